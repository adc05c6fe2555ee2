"""`make bench`: the pipeline against plain Celery and raw AMQP, side by side, in one run.

    python -m bench.run              # the real thing: bursts of 5,000, 10 s at 200 events/s, 3 runs
    python -m bench.run --smoke      # tiny sizes, so it never rots (part of make test)

Everything runs against the local RabbitMQ and PostgreSQL, in a vhost and databases of its own, with
real processes: the relay and the workers as the suite runs them, the plain Celery worker with the
same pool, concurrency and prefetch. Timing comes from PostgreSQL's clock on both ends (producer
commit, handler commit). Nothing here asserts a time: it measures and reports.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import amqp
import psycopg
from django.test import override_settings

from common.bus.amqp.connection import raw_channel

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
BODY = json.dumps({"id": str(uuid.uuid4()), "type": "bench.raw", "payload": "x" * 200}).encode()[:300]


@dataclass(frozen=True)
class Sizes:
    burst: int
    raw: int
    raw_confirmed: int
    steady_rate: float
    steady_seconds: float
    relay: int
    consumer: int
    growth_rows: int
    repeat: int


REAL = Sizes(
    burst=5000,
    raw=20000,
    raw_confirmed=3000,
    steady_rate=200,
    steady_seconds=10,
    relay=20000,
    consumer=5000,
    growth_rows=1_000_000,
    repeat=3,
)
SMOKE = Sizes(
    burst=60,
    raw=200,
    raw_confirmed=50,
    steady_rate=40,
    steady_seconds=1,
    relay=200,
    consumer=60,
    growth_rows=2000,
    repeat=1,
)


@dataclass
class Measured:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        return statistics.median(self.values[key])

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, vals in sorted(self.values.items()):
            section, name = key.split(".", 1)
            out.setdefault(section, {})[name] = round(statistics.median(vals), 2)
            out[section].setdefault("runs", {})[name] = {
                "min": round(min(vals), 2),
                "max": round(max(vals), 2),
                "all": [round(v, 2) for v in vals],
            }
        return out


# --- the environment ---------------------------------------------------------------------------
class Bench:
    def __init__(self, sizes: Sizes, workdir: Path) -> None:
        from tests.support import broker

        self.sizes, self.workdir = sizes, workdir
        self.prefix = f"bench_{uuid.uuid4().hex[:6]}_"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.vhost = broker.create_vhost("bench")
        try:
            self._prepare()
        except BaseException:
            self.close()  # a failed start (a bad setting, say) leaves no vhost or databases behind
            raise

    def _prepare(self) -> None:
        from tests.support import broker, databases

        workdir = self.workdir
        self.amqp_url = broker.amqp_url(self.vhost)
        self.producer_db = databases.create_database(f"{self.prefix}orders")
        self.consumer_db = databases.create_database(f"{self.prefix}notifications")
        jwt_dir = workdir / "jwt"
        from common.auth.keygen import ensure_pair

        ensure_pair(jwt_dir)
        self.env = dict(
            os.environ,
            APP_ENV="test",
            AMQP_URL=self.amqp_url,
            SUITE_VAR_DIR=str(workdir / "var"),
            ORDERS_DATABASE_URL=self.producer_db,
            NOTIFICATIONS_DATABASE_URL=self.consumer_db,
            BENCH_CONSUMER_DATABASE_URL=self.consumer_db,
            JWT_PUBLIC_KEY_FILE=str(jwt_dir / "public.pem"),
            JWT_PRIVATE_KEY_FILE=str(jwt_dir / "private.pem"),
            LOG_LEVEL="WARNING",
            WORKER_HTTP_PORT="0",
            RELAY_HTTP_PORT="0",
        )
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        for service in ("orders", "notifications"):
            subprocess.run(
                [sys.executable, "manage.py", service, "migrate", "-v0", "--noinput"],
                cwd=ROOT,
                env=self.env,
                check=True,
            )
        self.sql(
            self.producer_db,
            "CREATE TABLE bench_domain (n int PRIMARY KEY, scheduled_at double precision,"
            " committed_at timestamptz DEFAULT clock_timestamp())",
        )
        self.sql(
            self.consumer_db,
            "CREATE TABLE bench_effect (n int, scheduled_at double precision, handled_at timestamptz)",
        )

    def close(self) -> None:
        from tests.support import broker, databases

        for process in self.processes:
            self.stop(process)
        broker.delete_vhost(self.vhost)
        databases.drop_databases(self.prefix)

    @staticmethod
    def sql(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return list(cursor.fetchall()) if cursor.description else []

    def reset(self) -> None:
        self.sql(self.producer_db, "TRUNCATE bench_domain, bus_outboxmessage")
        self.sql(self.consumer_db, "TRUNCATE bench_effect, bus_inboxmessage")

    def start(self, argv: list[str], name: str, **env: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=dict(self.env, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def wait_log(self, name: str, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        path = self.workdir / f"{name}.log"
        while text not in (path.read_text(errors="replace") if path.exists() else ""):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not say {text!r}:\n{path.read_text()[-3000:]}")
            time.sleep(0.05)

    def worker(self, kind: str) -> subprocess.Popen[bytes]:
        name = f"{kind}-worker"
        if kind == "plain":
            argv = [
                str(BIN / "celery"),
                "-A",
                "bench.plain",
                "worker",
                "-Q",
                "plain",
                "-n",
                f"plain-{uuid.uuid4().hex[:6]}@%h",
            ]
            env = {}
        else:
            argv = [
                str(BIN / "celery"),
                "-A",
                "notifications_svc",
                "worker",
                "-Q",
                "notifications.events",
                "-n",
                f"notifications-{uuid.uuid4().hex[:6]}@%h",
            ]
            env = {"DJANGO_SETTINGS_MODULE": "bench.consumer_settings"}
        process = self.start([*argv, "--without-mingle", "--without-gossip", "-l", "WARNING"], name, **env)
        self.wait_consumer("plain" if kind == "plain" else "notifications.events", process)
        return process

    def wait_consumer(self, queue: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
        """Until the worker consumes from `queue` (its logs are quiet: they would cost throughput)."""
        from kombu import Connection

        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"no consumer on {queue}: see {self.workdir}")
            try:
                with Connection(self.amqp_url) as conn:
                    if raw_channel(conn).queue_declare(queue=queue, passive=True).consumer_count:
                        return
            except Exception:  # noqa: BLE001 - the queue may not exist yet
                pass
            time.sleep(0.1)

    def relay(self) -> subprocess.Popen[bytes]:
        process = self.start([sys.executable, "manage.py", "orders", "relay"], "relay", LOG_LEVEL="INFO")
        self.wait_log("relay", "started")
        return process

    def handled(self) -> int:
        return int(self.sql(self.consumer_db, "SELECT count(*) FROM bench_effect")[0][0])

    def wait_handled(self, count: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.handled() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.handled()} of {count} events handled")
            time.sleep(0.05)


# --- producers ---------------------------------------------------------------------------------
def produce_pipeline(n: int, scheduled_at: float) -> None:
    from django.db import connection, transaction

    from bench.contract import Pinged
    from common.bus.outbox.publish import publish

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_domain (n, scheduled_at) VALUES (%s, %s)", [n, scheduled_at])
        publish(Pinged(n=n, scheduled_at=scheduled_at), aggregate_id=f"bench-{n}", aggregate_version=1)


def produce_plain(n: int, scheduled_at: float) -> None:
    from django.db import connection, transaction

    from bench.plain import app

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_domain (n, scheduled_at) VALUES (%s, %s)", [n, scheduled_at])
    app.send_task("bench.plain_insert", args=[n, scheduled_at])  # after save, as people do


Producer = Callable[[int, float], None]


def burst(produce: Producer, count: int, threads: int = 4) -> None:
    """Commit `count` events as fast as `threads` producers can."""
    from django.db import connection

    def run(start: int) -> None:
        for n in range(start, count, threads):
            produce(n, time.time())
        connection.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()


def steady(produce: Producer, rate: float, seconds: float, offset: int) -> int:
    """Offer `rate` events/s for `seconds`; each carries its scheduled time (a late producer shows)."""
    count = int(rate * seconds)
    start = time.time() + 0.2
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - time.time()
        if delay > 0:
            time.sleep(delay)
        produce(offset + i, scheduled)
    return count


def throughput(bench: Bench, first: int, count: int) -> float:
    """Events/s from the first producer commit to the last handler commit."""
    [(t0,)] = bench.sql(
        bench.producer_db,
        "SELECT extract(epoch FROM min(committed_at)) FROM bench_domain WHERE n >= %s",
        (first,),
    )
    [(t1,)] = bench.sql(
        bench.consumer_db,
        "SELECT extract(epoch FROM max(handled_at)) FROM bench_effect WHERE n >= %s",
        (first,),
    )
    return count / max(float(t1) - float(t0), 1e-6)


def latencies(bench: Bench, first: int) -> list[float]:
    rows = bench.sql(
        bench.consumer_db,
        "SELECT (extract(epoch FROM handled_at) - scheduled_at) * 1000 FROM bench_effect WHERE n >= %s",
        (first,),
    )
    return sorted(float(r[0]) for r in rows)


def percentile(sorted_values: list[float], p: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


# --- scenarios -----------------------------------------------------------------------------------
def raw_amqp(bench: Bench, sizes: Sizes, out: Measured) -> None:
    from kombu import Connection

    parsed = Connection(bench.amqp_url)
    conn = amqp.Connection(
        host=f"{parsed.hostname}:{parsed.port or 5672}",
        userid=parsed.userid or "guest",
        password=parsed.password or "guest",
        virtual_host=parsed.virtual_host,
    )
    conn.connect()
    try:
        channel: Any = conn.channel()
        channel.queue_declare("bench.raw", durable=True, auto_delete=False)
        channel.queue_purge("bench.raw")
        started = time.perf_counter()
        for _ in range(sizes.raw):
            channel.basic_publish(
                amqp.Message(BODY, delivery_mode=2, content_type="application/json"), routing_key="bench.raw"
            )
        while channel.queue_declare("bench.raw", passive=True).message_count < sizes.raw:
            time.sleep(0.005)
        out.add("raw_amqp.publish_unconfirmed_per_s", sizes.raw / (time.perf_counter() - started))

        started = time.perf_counter()
        count = 0
        done = threading.Event()

        def on_message(message: amqp.Message) -> None:
            nonlocal count
            message.channel.basic_ack(message.delivery_tag)
            count += 1
            if count == sizes.raw:
                done.set()

        channel.basic_qos(0, 200, False)
        channel.basic_consume("bench.raw", callback=on_message)
        while not done.is_set():
            conn.drain_events(timeout=5)
        out.add("raw_amqp.consume_per_s", sizes.raw / (time.perf_counter() - started))

        confirming = conn.channel()
        confirming.confirm_select()
        started = time.perf_counter()
        for _ in range(sizes.raw_confirmed):
            confirming.basic_publish_confirm(amqp.Message(BODY, delivery_mode=2), routing_key="bench.raw")
        out.add("raw_amqp.publish_confirmed_per_s", sizes.raw_confirmed / (time.perf_counter() - started))
        confirming.queue_purge("bench.raw")
    finally:
        conn.close()


def end_to_end(
    bench: Bench,
    sizes: Sizes,
    out: Measured,
    name: str,
    produce: Producer,
    processes: Callable[[], list[subprocess.Popen[bytes]]],
) -> None:
    bench.reset()
    running = processes()
    try:
        burst(produce, sizes.burst)
        bench.wait_handled(sizes.burst)
        out.add(f"{name}.throughput_per_s", throughput(bench, 0, sizes.burst))
        offset = 10_000_000
        count = steady(produce, sizes.steady_rate, sizes.steady_seconds, offset)
        bench.wait_handled(sizes.burst + count)
        values = latencies(bench, offset)
        for p in (50, 95, 99):
            out.add(f"{name}.p{p}_ms", percentile(values, p))
        out.add(f"{name}.max_ms", values[-1])
    finally:
        for process in running:
            bench.stop(process)


def relay_only() -> override_settings:
    """Events left to the relay, as with BUS_DISPATCH_ON_COMMIT off."""
    return override_settings(BUS_DISPATCH_ON_COMMIT=False)


def relay_alone(bench: Bench, sizes: Sizes, out: Measured) -> None:
    """Outbox rows (committed beforehand) to confirmed publications, in this process."""
    from django.conf import settings

    from common.bus.outbox.relay import Relay, RelayConfig

    bench.reset()
    with relay_only():
        burst(produce_pipeline, sizes.relay, threads=4)
    relay = Relay(
        RelayConfig(service="orders", amqp_url=settings.AMQP_URL, batch_size=settings.BUS_RELAY_BATCH_SIZE)
    )
    started = time.perf_counter()
    try:
        relay.drain()
    finally:
        relay.publisher.close()
    out.add("relay.publish_per_s", relay.published_total / (time.perf_counter() - started))


def consumer_alone(bench: Bench, sizes: Sizes, out: Measured) -> None:
    """A full queue drained by one worker, as the suite runs it."""
    from kombu import Connection

    from common.bus.amqp import topology

    bench.reset()
    with Connection(bench.amqp_url) as conn:
        topology.declare(conn, "notifications", ["bench.pinged"])
        raw_channel(conn).queue_purge("notifications.events")
    relay = bench.relay()
    burst(produce_pipeline, sizes.consumer)
    while bench.sql(bench.producer_db, "SELECT count(*) FROM bus_outboxmessage WHERE status = 'pending'")[0][
        0
    ]:
        time.sleep(0.05)
    bench.stop(relay)
    worker = bench.worker("pipeline")
    try:
        bench.wait_handled(sizes.consumer)
        [(span,)] = bench.sql(
            bench.consumer_db,
            "SELECT extract(epoch FROM max(handled_at) - min(handled_at)) FROM bench_effect",
        )
        out.add("consumer.handled_per_s", sizes.consumer / max(float(span), 1e-6))
    finally:
        bench.stop(worker)


def grow_tables(bench: Bench, rows: int) -> None:
    """Fill the outbox (published rows) and the inbox with `rows` rows each, as months would."""
    bench.sql(
        bench.producer_db,
        f"""
        INSERT INTO bus_outboxmessage (event_id, event_type, aggregate_id, correlation_id, envelope, status,
                                       created_at, published_at, attempts, last_error)
        SELECT gen_random_uuid(), 'bench.pinged', 'old-' || i, gen_random_uuid(), '{{}}', 'published',
               now() - interval '1 day', now() - interval '1 day', 1, ''
        FROM generate_series(1, {rows}) AS i""",
    )
    bench.sql(
        bench.consumer_db,
        f"""
        INSERT INTO bus_inboxmessage (event_id, event_type, handled_at)
        SELECT gen_random_uuid(), 'bench.pinged', now() - interval '1 day' FROM generate_series(1, {rows})""",
    )
    bench.sql(bench.producer_db, "VACUUM ANALYZE bus_outboxmessage")
    bench.sql(bench.consumer_db, "VACUUM ANALYZE bus_inboxmessage")


def pipeline_grown(bench: Bench, sizes: Sizes, out: Measured) -> None:
    bench.sql(bench.producer_db, "TRUNCATE bench_domain")
    bench.sql(bench.consumer_db, "TRUNCATE bench_effect")
    running = [bench.relay(), bench.worker("pipeline")]
    try:
        burst(produce_pipeline, sizes.burst)
        bench.wait_handled(sizes.burst)
        out.add("pipeline_1m.throughput_per_s", throughput(bench, 0, sizes.burst))
    finally:
        for process in running:
            bench.stop(process)
        bench.sql(bench.producer_db, "DELETE FROM bus_outboxmessage WHERE aggregate_id NOT LIKE 'old-%%'")


# --- the run ------------------------------------------------------------------------------------
def ratios(summary: dict[str, Any]) -> dict[str, float]:
    def ratio(a: float, b: float) -> float:
        return round(a / b, 3) if b else 0.0

    return {
        "pipeline_vs_plain_celery": ratio(
            summary["pipeline"]["throughput_per_s"], summary["plain_celery"]["throughput_per_s"]
        ),
        "p99_pipeline_vs_plain_celery": ratio(
            summary["pipeline"]["p99_ms"], summary["plain_celery"]["p99_ms"]
        ),
        "p99_pipeline_relay_vs_plain_celery": ratio(
            summary["pipeline_relay"]["p99_ms"], summary["plain_celery"]["p99_ms"]
        ),
        "relay_vs_raw_unconfirmed": ratio(
            summary["relay"]["publish_per_s"], summary["raw_amqp"]["publish_unconfirmed_per_s"]
        ),
        "pipeline_1m_vs_pipeline": ratio(
            summary["pipeline_1m"]["throughput_per_s"], summary["pipeline"]["throughput_per_s"]
        ),
    }


def caveats(summary: dict[str, Any], steady_rate: float) -> list[str]:
    """What makes a figure mean something else than it seems: latency at an offered load the
    system cannot sustain is the age of a growing backlog, not the time one event takes."""
    out = []
    for key, label in (("plain_celery", "plain Celery"), ("pipeline", "the pipeline")):
        capacity = summary[key]["throughput_per_s"]
        if capacity < steady_rate * 1.25:
            out.append(
                f"{label} handles {capacity:.0f} events/s at most here, too close to the offered "
                f"{steady_rate:.0f}/s: its latency figures measure a backlog (a slower machine)"
            )
    return out


def table(summary: dict[str, Any], rates: dict[str, float]) -> str:
    rows = [
        ("raw AMQP publish, no confirms", summary["raw_amqp"]["publish_unconfirmed_per_s"], "msg/s"),
        ("raw AMQP publish, sync confirms", summary["raw_amqp"]["publish_confirmed_per_s"], "msg/s"),
        ("raw AMQP consume, manual acks", summary["raw_amqp"]["consume_per_s"], "msg/s"),
        ("plain Celery throughput", summary["plain_celery"]["throughput_per_s"], "events/s"),
        ("pipeline throughput", summary["pipeline"]["throughput_per_s"], "events/s"),
        ("pipeline throughput, relay only", summary["pipeline_relay"]["throughput_per_s"], "events/s"),
        ("pipeline throughput, 1M-row tables", summary["pipeline_1m"]["throughput_per_s"], "events/s"),
        ("relay alone (confirmed)", summary["relay"]["publish_per_s"], "events/s"),
        ("consumer alone", summary["consumer"]["handled_per_s"], "events/s"),
    ]
    lines = [f"{'measure':<40} {'median':>10}  unit", "-" * 60]
    lines += [f"{name:<40} {value:>10.0f}  {unit}" for name, value, unit in rows]
    lines.append("")
    lines.append(f"{'latency at steady load (ms)':<40} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    for key, label in (
        ("plain_celery", "plain Celery"),
        ("pipeline", "pipeline"),
        ("pipeline_relay", "pipeline, relay only"),
    ):
        s = summary[key]
        lines.append(
            f"{label:<40} {s['p50_ms']:>8.1f} {s['p95_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['max_ms']:>8.1f}"
        )
    lines.append("")
    lines += [f"{name:<40} {value:>10.3f}" for name, value in rates.items()]
    return "\n".join(lines)


def versions() -> dict[str, str]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    rabbit = subprocess.run(["rabbitmqctl", "-q", "version"], capture_output=True, text=True).stdout.strip()
    from tests.support import databases

    [(pg,)] = Bench.sql(databases.server_url(), "SHOW server_version")
    return {
        "python": platform.python_version(),
        "celery": version("celery"),
        "kombu": version("kombu"),
        "django": version("django"),
        "psycopg": version("psycopg"),
        "rabbitmq": rabbit,
        "postgresql": str(pg),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
    }


def python_speed() -> float:
    """Milliseconds per million iterations of a plain Python loop (best of 3): shared machines differ
    in speed from day to day, and absolute numbers only compare between runs of a similar speed."""

    def once() -> float:
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        return (time.perf_counter() - started) * 1000

    return round(min(once() for _ in range(3)), 1)


@contextmanager
def django_for(bench: Bench) -> Iterator[None]:
    """This process is the producer service: orders' settings, on the benchmark's databases."""
    os.environ.update(bench.env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "orders_svc.settings"
    # the suite's default, whatever the calling environment says (the test runner turns it off)
    os.environ["BUS_DISPATCH_ON_COMMIT"] = "1"
    import django

    django.setup()
    importlib.import_module("bench.contract")  # registers bench.pinged
    from django.conf import settings

    # Both workers, the suite's and the plain one, get the pool the suite's settings give.
    bench.env["WORKER_CONCURRENCY"] = str(settings.WORKER_CONCURRENCY)
    bench.env["WORKER_PREFETCH_MULTIPLIER"] = str(settings.WORKER_PREFETCH_MULTIPLIER)
    os.environ.update(bench.env)

    yield


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; checks that everything runs")
    parser.add_argument("--repeat", type=int, help="repetitions (medians reported)")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else REAL
    if args.repeat:
        if args.repeat < 1:
            parser.error("--repeat must be at least 1")
        sizes = Sizes(**{**sizes.__dict__, "repeat": args.repeat})
    workdir = Path(tempfile.mkdtemp(prefix="suite-bench-"))
    bench = Bench(sizes, workdir)
    out = Measured()
    used: dict[str, Any] = {}
    try:
        with django_for(bench):
            from django.conf import settings

            used["relay_batch_size"] = settings.BUS_RELAY_BATCH_SIZE
            used["python_loop_ms_per_million"] = python_speed()
            for run in range(sizes.repeat):
                print(f"run {run + 1}/{sizes.repeat}", flush=True)
                raw_amqp(bench, sizes, out)
                end_to_end(bench, sizes, out, "plain_celery", produce_plain, lambda: [bench.worker("plain")])
                end_to_end(
                    bench,
                    sizes,
                    out,
                    "pipeline",
                    produce_pipeline,
                    lambda: [bench.relay(), bench.worker("pipeline")],
                )
                with relay_only():
                    end_to_end(
                        bench,
                        sizes,
                        out,
                        "pipeline_relay",
                        produce_pipeline,
                        lambda: [bench.relay(), bench.worker("pipeline")],
                    )
                relay_alone(bench, sizes, out)
                consumer_alone(bench, sizes, out)
            bench.reset()
            grow_tables(bench, sizes.growth_rows)
            for _ in range(sizes.repeat):
                pipeline_grown(bench, sizes, out)
    finally:
        bench.close()
    summary = out.summary()
    rates = ratios(summary)
    notes = caveats(summary, sizes.steady_rate)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        **summary,
        "ratios": rates,
        "warnings": notes,
        "versions": versions(),
        "machine_speed": {"python_loop_ms_per_million": used["python_loop_ms_per_million"]},
        "settings": {
            "sizes": sizes.__dict__,
            "worker_pool": "prefork",
            "worker_concurrency": int(bench.env["WORKER_CONCURRENCY"]),
            "worker_prefetch_multiplier": int(bench.env["WORKER_PREFETCH_MULTIPLIER"]),
            "relay_batch_size": used["relay_batch_size"],
            "dispatch_on_commit": "pipeline: on (the default); pipeline_relay: off",
            "producer_threads": 4,
            "queues": (
                "pipeline: quorum queue, confirmed publishing; plain: classic queue, as Celery's defaults"
            ),
        },
    }
    print(table(summary, rates))
    for caveat in notes:
        print(f"warning: {caveat}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
