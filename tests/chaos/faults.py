"""The faults of the matrix, each a function of the running suite that injects it and heals it."""

from __future__ import annotations

import json
import os
import signal
import uuid
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from common.bus.amqp.wire import TaskMessage, task_message
from common.bus.consume import deadletters
from common.bus.consume.deadletters import Failure
from tests.chaos.harness import Fault, Run, hold
from tests.support import databases
from tests.support.polling import wait_for
from tests.support.processes import pool_processes, wait_log
from tests.support.supervised import SupervisedProcess

CONSUMERS = ("orders", "notifications")
SILENCE = 20  # seconds a silent link lasts: longer than any read, confirm or connect timeout


def _process(run: Run, name: str) -> SupervisedProcess:
    process = run.suite.processes[name]
    assert isinstance(process, SupervisedProcess)
    return process


def _back(run: Run, name: str, before: int) -> None:
    """Wait until supervisord has restarted `name` and it serves again."""
    process = _process(run, name)
    wait_for(lambda: process.replaced(before), timeout=90, what=f"{name} restarted")
    service, kind = name.split("-")
    run.suite.wait_ready(service, (kind,))


def kill_pools(run: Run) -> None:
    for service in CONSUMERS:
        worker = _process(run, f"{service}-worker")
        children = wait_for(lambda w=worker: pool_processes(w.pid), what=f"{worker.name}'s pool")  # type: ignore[misc]
        for child in children:
            os.kill(child, signal.SIGKILL)
        for child in children:
            wait_log(worker, f"pid:{child} exited with 'signal 9 (SIGKILL)'")


def pool_sigkill(run: Run) -> None:
    for _ in range(run.rounds(6, 2)):
        run.progressed(3)
        kill_pools(run)


def worker_sigkill(run: Run) -> None:
    for _ in range(run.rounds(2)):
        for service in CONSUMERS:
            run.progressed(3)
            worker = _process(run, f"{service}-worker")
            before = worker.pid
            os.killpg(before, signal.SIGKILL)  # main process and pool
            _back(run, worker.name, before)


def relay_sigkill(run: Run) -> None:
    """The APIs cannot reach the broker, so the relays publish everything; they are killed while
    they do."""
    assert run.suite.broker_proxy is not None
    run.suite.broker_proxy.cut("api")
    try:
        for _ in range(run.rounds(3)):
            run.progressed(6)
            for service in ("users", "orders"):
                relay = _process(run, f"{service}-relay")
                before = relay.pid
                relay.kill(signal.SIGKILL)
                _back(run, relay.name, before)
    finally:
        run.suite.broker_proxy.restore("api")


def api_sigkill(run: Run) -> None:
    for _ in range(run.rounds(3)):
        for service in ("users", "orders"):
            run.progressed(3)
            api = _process(run, f"{service}-api")
            before = api.pid
            os.killpg(before, signal.SIGKILL)  # gunicorn's arbiter and its worker
            _back(run, api.name, before)


def link_cut(kind: str) -> Fault:
    def inject(run: Run) -> None:
        assert run.suite.broker_proxy is not None
        for _ in range(run.rounds(3)):
            run.progressed(3)
            run.suite.broker_proxy.cut(kind)
            hold(5)
            run.suite.broker_proxy.restore(kind)

    return Fault(f"{kind} ↔ broker link cut 5 s", "G1 (nothing lost while a link is down)", inject)


def links_silent(run: Run) -> None:
    """Every link to the broker goes quiet, as when a route or a NAT entry is lost: no byte passes
    and no connection is closed, so only heartbeats and timeouts tell; the connections open then
    stay dead after the link is back (only new ones pass), and each process must notice and
    reconnect."""
    assert run.suite.broker_proxy is not None
    for _ in range(run.rounds(2)):
        run.progressed(3)
        run.suite.broker_proxy.silence()
        hold(SILENCE)
        run.suite.broker_proxy.restore()


def broker_stop_app(run: Run) -> None:
    assert run.node is not None
    for _ in range(run.rounds(2)):
        run.progressed(4)
        run.node.stop_app()
        hold(6)
        run.node.start_app()


def broker_sigkill(run: Run) -> None:
    assert run.node is not None
    for _ in range(run.rounds(2)):
        run.progressed(4)
        run.node.kill()
        hold(2)
        run.node.start()  # a cold start on the same data


def pools_then_broker_restart(run: Run) -> None:
    assert run.node is not None
    for _ in range(run.rounds(3)):
        run.progressed(3)
        kill_pools(run)
        run.node.stop_app()
        hold(6)
        run.node.start_app()


def cluster_leader_sigkill(run: Run) -> None:
    """The node leading the consumers' quorum queues SIGKILLed; clients reach the others through
    the suite's proxies (a load balancer's part); the node cold-starts and rejoins."""
    assert run.cluster is not None
    vhost = run.suite.vhost
    for _ in range(run.rounds(2)):
        run.progressed(4)
        leader = run.cluster.leader(vhost, "notifications.events")
        run.notes.append(f"killed {leader.name}, leader of notifications.events")
        leader.kill()
        hold(5)
        leader.start()  # a cold start on its data: it rejoins the cluster
        wait_for(
            lambda: run.cluster is not None and run.cluster.online(vhost, "notifications.events") == 3,
            timeout=120,
            what="every replica online again",
        )


def memory_alarm(run: Run) -> None:
    assert run.node is not None
    for _ in range(run.rounds(2)):
        run.progressed(4)
        run.node.ctl("set_vm_memory_high_watermark", "0.0001")  # publishers blocked
        hold(6)
        run.node.ctl("set_vm_memory_high_watermark", "0.4")


def postgres_away(run: Run) -> None:
    """Every connection of the suite's databases dropped and refused for 5 s, as in a restart of
    its PostgreSQL server (the machine's server itself stays up for everyone else)."""
    names = [
        urlsplit(run.suite.env[f"{service.upper()}_DATABASE_URL"]).path.lstrip("/")
        for service in ("users", "orders", "notifications")
    ]

    def allow(allowed: bool) -> None:
        with psycopg.connect(databases.server_url(), autocommit=True) as conn:
            for name in names:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                        sql.Identifier(name), sql.SQL("true" if allowed else "false")
                    )
                )
                if not allowed:
                    conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
                    )

    for _ in range(run.rounds(2)):
        run.progressed(4)
        allow(False)
        try:
            hold(5)
        finally:
            allow(True)


def poison(run: Run) -> None:
    """Garbage among the events: it is parked, one dead letter each, and nothing else is."""
    sent = 0
    for _ in range(run.rounds(4, 2)):
        run.progressed(2)
        for routing_key in ("order.placed", "user.created"):
            headers = {"task": routing_key, "id": str(uuid.uuid4()), "lang": "py", "retries": 0}
            run.suite.publish(b"{not json", routing_key=routing_key, headers=headers)
            body = json.dumps([[{"id": "not an envelope"}], {}, {}]).encode()
            run.suite.publish(body, routing_key=routing_key, headers=dict(headers, id=str(uuid.uuid4())))
            sent += 2
    # user.created reaches both consumers, order.placed notifications only
    expected = {"orders": sent // 4 * 2, "notifications": sent}
    for service, count in expected.items():
        wait_for(
            lambda s=service, c=count: _dead_letters(run, s) == c,  # type: ignore[misc]
            timeout=60,
            what=f"{count} dead letter(s) in {service}",
        )
        run.suite.manage(service, "dlq", "purge", "--noinput")
    run.notes.append(f"{sent} garbage messages published, each parked")


def _dead_letters(run: Run, service: str) -> int:
    out = run.suite.manage(service, "dlq", "list")
    return 0 if "is empty" in out else len(out.strip().splitlines()) - 2


def replay_applied(run: Run) -> None:
    """Dead letters of events that were applied already are replayed: nothing happens twice."""
    run.progressed(8)
    rows = run.suite.sql(
        "users",
        "SELECT event_id, event_type, aggregate_id, correlation_id, envelope FROM bus_outboxmessage"
        " WHERE status = 'published' ORDER BY id DESC LIMIT %s",
        (run.rounds(20, 5),),
    )
    for service in CONSUMERS:
        with deadletters.confirmed_producer(run.suite.env["AMQP_URL"]) as producer:
            for event_id, event_type, aggregate_id, correlation_id, envelope in rows:
                message = task_message(
                    event_id=str(event_id),
                    event_type=event_type,
                    aggregate_id=aggregate_id,
                    correlation_id=str(correlation_id),
                    causation_id=None,
                    envelope_json=envelope,
                    origin="chaos",
                )
                raw = TaskMessage(message.body, message.headers, message.properties, event_type)
                deadletters.park(producer, service, raw, Failure("error", "Chaos", "parked by the harness"))
        out = run.suite.manage(service, "dlq", "replay", "--all")
        assert f"{len(rows)} dead letter(s) sent back" in out, out
    run.notes.append(f"{len(rows)} applied events replayed to each consumer")


def deletions_racing_orders(run: Run) -> None:
    """Customers delete their account while orders are being placed for them."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.chaos.clients import Customer

    def race(n: int) -> None:
        import random

        customer = Customer(run.suite, run.history, random.Random(n))
        customer.sign_up()
        customer.place_order()
        with ThreadPoolExecutor(max_workers=2) as pool:
            more = pool.submit(_orders_until_refused, customer)
            pool.submit(customer.delete_account).result()
            more.result()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(race, range(run.rounds(12, 4))))


def _orders_until_refused(customer: object) -> None:
    from tests.chaos.clients import ITEMS, Customer

    assert isinstance(customer, Customer)
    for _ in range(5):
        status, body = customer.suite.call(
            "POST", "orders", "/api/orders/", {"items": ITEMS}, token=customer.token
        )
        if status == 201:
            customer._ordered(str(body["id"]))
        elif status in (401, 403):
            return


FAULTS: tuple[Fault, ...] = (
    Fault("pool processes SIGKILLed", "G1, G2 (redelivered, applied once)", pool_sigkill, sqlite=True),
    Fault("worker main process SIGKILLed", "G1, G2", worker_sigkill),
    Fault("relay SIGKILLed mid-batch", "G1, G2 (a lease runs out, republished, deduplicated)", relay_sigkill),
    Fault("API SIGKILLed under load", "G1 (committed rows published by a relay)", api_sigkill, sqlite=True),
    Fault("broker stop_app / start_app", "G1", broker_stop_app, sqlite=True, broker="node"),
    Fault(
        "broker SIGKILL, cold start",
        "G1 (confirmed means durable)",
        broker_sigkill,
        sqlite=True,
        broker="node",
    ),
    Fault(
        "pool kills, then broker restart",
        "workers survive (celery#9250)",
        pools_then_broker_restart,
        sqlite=True,
        broker="node",
    ),
    link_cut("api"),
    link_cut("worker"),
    link_cut("relay"),
    Fault(
        f"every broker link silent {SILENCE} s (half-open, nothing closed)",
        "G1 (heartbeats and timeouts find dead connections)",
        links_silent,
    ),
    Fault("PostgreSQL connections dropped 5 s", "G4 (transient, retried)", postgres_away),
    Fault(
        "cluster: a quorum queue's leader SIGKILLed",
        "G1, G2 (another replica leads, nothing lost or doubled)",
        cluster_leader_sigkill,
        broker="cluster",
    ),
    Fault("RabbitMQ memory alarm", "G1 (publishers blocked, nothing lost)", memory_alarm, broker="node"),
    Fault("garbage among the events", "G3 (parked, nothing else blocked)", poison),
    Fault("dead letters of applied events replayed", "G2 (replays change nothing)", replay_applied),
    Fault(
        "account deleted while ordering",
        "G5 (no order left open, nothing sent after)",
        deletions_racing_orders,
    ),
)
