"""The whole suite as real processes: three APIs, one worker and one relay per service, started from
the Procfile as `make run` starts them, on the real broker and databases.

Each `Suite` gets its own RabbitMQ vhost and its own databases: PostgreSQL databases, or with
`TEST_DATABASES=sqlite` (the `sqlite` group) the SQLite files of `make run`'s embedded default. So it
can be started, faulted and stopped without touching anything else on the machine.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from kombu import Connection, Producer

from common.bus.amqp.topology import EVENTS_EXCHANGE
from common.bus.amqp.wire import envelope_message
from common.contracts import Envelope
from common.ops import rabbitmq_definitions
from tests.support import broker as broker_mod
from tests.support import databases, sqlite
from tests.support.broker import Broker
from tests.support.metrics import Sample, scrape
from tests.support.polling import wait_for
from tests.support.processes import Process, free_port, manage, procfile, wait_http, wait_log
from tests.support.proxy import Proxies
from tests.support.supervised import Supervisor

SERVICES = ("users", "orders", "notifications")
KINDS = ("api", "worker", "relay")
MAIL_SEPARATOR = "\n" + "-" * 79 + "\n"  # how Django's file backend ends each message


# Many sign-ups and logins from one address in a few seconds: throttles that let a crowd through.
CROWD_THROTTLES = {
    "THROTTLE_LOGIN": "10000/min",
    "THROTTLE_LOGIN_ACCOUNT": "10000/min",
    "THROTTLE_SIGNUP": "10000/min",
    "THROTTLE_ORDERS": "10000/min",
    "THROTTLE_PROFILE": "10000/min",
}


@contextmanager
def running(workdir: Path, *, start: bool = True, **options: Any) -> Iterator[Suite]:
    """A suite set up (vhost, databases, topology) and, unless `start=False`, started; torn down
    at the end whatever happens."""
    suite = Suite(workdir=workdir, **options)
    try:
        suite.setup()
        if start:
            suite.start()
        yield suite
    finally:
        suite.teardown()


def backend() -> str:
    """Which databases suites run on: `postgresql` (default) or `sqlite` (the embedded default)."""
    chosen = os.environ.get("TEST_DATABASES", "postgresql")
    assert chosen in ("postgresql", "sqlite"), f"TEST_DATABASES must be postgresql or sqlite, got {chosen!r}"
    return chosen


@dataclass
class Suite:
    workdir: Path
    settings: dict[str, str] = field(default_factory=dict)  # extra environment for every process
    vhost: str = ""
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    http_ports: dict[str, int] = field(default_factory=dict)  # health/metrics of workers and relays
    processes: dict[str, Process] = field(default_factory=dict)
    db_prefix: str = ""
    # least privilege: a broker user per service (and one for Flower), as compose and k8s run them
    least_privilege: bool = False
    broker_users: dict[str, tuple[str, str]] = field(default_factory=dict)
    # the suite's processes reach the broker through a TCP proxy the test owns (to cut their link)
    broker_proxy: Proxies | None = None
    proxied: bool = False
    database: str = field(default_factory=backend)
    broker: Broker = field(default_factory=lambda: broker_mod.SYSTEM)  # or a node of the test's own
    # the processes run under supervisord as `make run` runs them (restarted when they die)
    supervised: bool = False
    supervisor: Supervisor | None = None

    @property
    def sqlite(self) -> bool:
        return self.database == "sqlite"

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    @property
    def mail_dir(self) -> Path:
        return self.workdir / "mail"

    def setup(self) -> None:
        run_prefix = os.environ.get("TEST_RUN_PREFIX", "suite_e2e_")
        self.db_prefix = f"{run_prefix}{uuid.uuid4().hex[:6]}_"
        self.vhost = self.broker.create_vhost("e2e")
        self.env = dict(
            os.environ,
            AMQP_URL=self.broker.amqp_url(self.vhost),
            EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
            EMAIL_FILE_PATH=str(self.mail_dir),
            SUITE_VAR_DIR=str(self.workdir / "var"),
            WORKER_CONCURRENCY="2",
            **self.settings,
        )
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.broker.set_policies(self.vhost, self.env)
        if self.proxied:
            target = urlsplit(self.env["AMQP_URL"])
            ports = self.broker.members or (target.port or 5672,)
            self.broker_proxy = Proxies(target.hostname or "127.0.0.1", *ports)
        if self.least_privilege:
            for name, grants in [
                *((s, rabbitmq_definitions.permissions(s)) for s in SERVICES),
                ("flower", rabbitmq_definitions.MONITOR_PERMISSIONS),
            ]:
                self.broker_users[name] = self.broker.create_user(self.vhost, name, grants)
            for service in SERVICES:  # which event types each may publish, as deploy/ sets them
                topic = rabbitmq_definitions.topic_permissions(service)
                user = self.broker_users[service][0]
                self.broker.set_topic_permissions(
                    self.vhost, user, topic["exchange"], write=topic["write"], read=topic["read"]
                )
                # every process knows each producer's broker user (named after it in deploy/)
                self.env[f"BUS_{service.upper()}_BROKER_USER"] = user
        for service in SERVICES:
            if self.sqlite:  # no URL: each service's SQLite file under SUITE_VAR_DIR, as `make run`
                self.env.pop(f"{service.upper()}_DATABASE_URL", None)
            else:
                url = databases.create_database(f"{self.db_prefix}{service}")
                self.env[f"{service.upper()}_DATABASE_URL"] = url
            manage(service, "migrate", "--noinput", "-v0", env=self.env_for(service))
            manage(service, "declare_topology", env=self.env_for(service))

    def env_for(self, service: str, kind: str = "command") -> dict[str, str]:
        """The environment of one service's processes: its own broker user (if least privilege),
        through the proxy of their kind (if proxied)."""
        user, password = self.broker_users.get(service, (None, None))
        port = self.broker_proxy.port(kind) if self.broker_proxy else None
        if user is None and port is None:
            return self.env
        return dict(
            self.env, AMQP_URL=self.broker.amqp_url(self.vhost, user=user, password=password, port=port)
        )

    def start(self) -> None:
        """Every process of the Procfile but Flower, as `make run` starts them; ready when each
        API answers, each worker is consuming and each relay is running."""
        names = [f"{service}-{kind}" for service in SERVICES for kind in KINDS]
        if self.supervised:
            self.supervisor = Supervisor(self.workdir / "supervisor", {n: self.entry_env(n) for n in names})
            self.processes.update(self.supervisor.start())
        else:
            for name in names:
                self.start_entry(name)
        for service in SERVICES:
            self.wait_ready(service)

    def wait_ready(self, service: str, kinds: tuple[str, ...] = KINDS) -> None:
        if "api" in kinds:  # the app is loaded before gunicorn serves: /healthz answers once ready
            wait_http(self.processes[f"{service}-api"], self.url(service, "/healthz"))
        if "worker" in kinds:
            wait_log(self.processes[f"{service}-worker"], "ready.")
        if "relay" in kinds:
            wait_log(self.processes[f"{service}-relay"], "started")

    def entry_env(self, name: str, entry: str | None = None) -> dict[str, str]:
        """The environment of process `name`, run from the Procfile's `entry` (default: `name`):
        this suite's broker, databases and ports."""
        entry = entry or name
        service = entry.split("-")[0]
        for api in SERVICES:
            self.ports.setdefault(api, free_port())
        ports = {f"{api.upper()}_PORT": str(self.ports[api]) for api in SERVICES}
        kind = entry.split("-")[-1]
        env = dict(self.env_for(service, kind) if service in SERVICES else self.env, **ports)
        if entry.endswith(("-worker", "-relay")):
            self.http_ports[name] = self.http_ports.get(name) or free_port()
            variable = "WORKER_HTTP_PORT" if entry.endswith("-worker") else "RELAY_HTTP_PORT"
            env[variable] = str(self.http_ports[name])
        if entry == "flower":
            self.ports.setdefault("flower", free_port())
            env["FLOWER_PORT"] = str(self.ports["flower"])
        return env

    def start_entry(self, name: str, entry: str | None = None, **extra_env: str) -> Process:
        """Start (or restart) the Procfile entry `entry` (default: `name`) as process `name`, with
        this suite's ports and environment. A second worker of a service gets its own node name."""
        entry = entry or name
        command = procfile()[entry]
        if entry.endswith("-worker") and name != entry:
            node = f"-n {entry.split('-')[0]}@%h"
            assert node in command, f"the Procfile's {entry} no longer names its node with {node!r}"
            command = command.replace(node, f"-n {name}@%h")
        env = dict(self.entry_env(name, entry), **extra_env)
        # `exec`: the process we hold is the entry's own, not a shell around it
        return self._start(name, ["/bin/sh", "-c", f"exec {command}"], env)

    def start_api(self, service: str) -> Process:
        return self.start_entry(f"{service}-api")

    def start_worker(
        self, service: str, name: str | None = None, settings_module: str | None = None, **env: str
    ) -> Process:
        """The service's worker from the Procfile (optionally with other Django settings or
        environment)."""
        if settings_module:
            env["DJANGO_SETTINGS_MODULE"] = settings_module
        return self.start_entry(name or f"{service}-worker", f"{service}-worker", **env)

    def start_relay(self, service: str, name: str | None = None) -> Process:
        return self.start_entry(name or f"{service}-relay", f"{service}-relay")

    def metrics(self, process: str) -> Sample:
        """A scrape; a connection dropped by a busy process's metrics server is tried again."""
        status, text = wait_for(
            lambda: (r := self.http(process, "/metrics"))[0] != 0 and r,
            timeout=10,
            what=f"{process} /metrics",
        )
        assert status == 200, text
        return scrape(text)

    def http(self, process: str, path: str) -> tuple[int, str]:
        """GET a process's health/metrics endpoint (an API's own port, a worker's or relay's)."""
        if not process.endswith("-api"):
            request = urllib.request.Request(f"http://127.0.0.1:{self.http_ports[process]}{path}")
        else:  # the public port: metrics need the token, where one is set
            request = urllib.request.Request(self.url(process.removesuffix("-api"), path))
            if self.env.get("METRICS_TOKEN"):
                request.add_header("Authorization", f"Bearer {self.env['METRICS_TOKEN']}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError as exc:  # nothing answers (the process is gone, or not listening yet)
            return 0, f"{type(exc).__name__}: {exc}"

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        process = Process(name, argv, env or self.env, self.workdir / f"{name}.log").start()
        self.processes[name] = process
        return process

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        for process in self.processes.values():
            process.stop()

    def teardown(self) -> None:
        self.stop()
        if self.broker_proxy is not None:
            self.broker_proxy.close()
        if self.vhost:
            self.broker.delete_vhost(self.vhost)
        for user, _ in self.broker_users.values():
            self.broker.delete_user(user)
        if self.db_prefix:
            databases.drop_databases(self.db_prefix)

    def manage(self, service: str, *args: str, **env: str) -> str:
        return manage(service, *args, env=dict(self.env_for(service), **env))

    def start_flower(self, basic_auth: str | None = None) -> Process:
        """Flower from the Procfile (with Flower's own broker user, if least privilege)."""
        env: dict[str, str] = {}
        if "flower" in self.broker_users:
            user, password = self.broker_users["flower"]
            env["AMQP_URL"] = self.broker.amqp_url(self.vhost, user=user, password=password)
        if basic_auth:
            env["FLOWER_BASIC_AUTH"] = basic_auth
        return self.start_entry("flower", **env)

    def sql(self, service: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the service's database (autocommit); rows if it returns any.

        Written for PostgreSQL; on SQLite it is translated (`tests.support.sqlite`). Pass UUID
        columns' values as `uuid.UUID`, as both backends store them differently."""
        if self.sqlite:
            return sqlite.execute(self.workdir / "var" / f"{service}.sqlite3", query, params)
        with psycopg.connect(self.env[f"{service.upper()}_DATABASE_URL"], autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return list(cursor.fetchall()) if cursor.description else []

    def publish(
        self,
        body: bytes,
        *,
        routing_key: str,
        headers: dict[str, Any] | None = None,
        content_type: str = "application/json",
        message_id: str | None = None,
        as_service: str | None = None,
    ) -> None:
        """Publish raw bytes to the events exchange, confirmed: a producer we do not control (as
        the suite's own broker user, as every service is outside production), or `as_service`
        (its own broker user, if least privilege)."""
        url = self.env["AMQP_URL"]
        if as_service in self.broker_users:
            user, password = self.broker_users[as_service]
            url = self.broker.amqp_url(self.vhost, user=user, password=password)
        with Connection(url, transport_options={"confirm_publish": True}) as conn:
            Producer(conn.default_channel).publish(
                body,
                user_id=conn.userid,
                exchange=EVENTS_EXCHANGE,
                routing_key=routing_key,
                headers=headers or {},
                content_type=content_type,
                content_encoding="utf-8",
                serializer=None,
                message_id=message_id,
                delivery_mode=2,
            )

    def publish_event(self, envelope: Envelope) -> None:
        """As its producer publishes it (with its broker user, if least privilege)."""
        message = envelope_message(envelope, origin="test")
        self.publish(
            message.body,
            as_service=envelope.producer,
            routing_key=message.routing_key,
            headers=message.headers,
            message_id=message.properties["message_id"],
        )

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.log()[-4000:]}" for n, p in self.processes.items())

    # --- HTTP -----------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        service: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        *,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        return self.call_with_headers(method, service, path, body, token=token, timeout=timeout)

    def call_with_headers(
        self,
        method: str,
        service: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url(service, path), data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for name, header in (headers or {}).items():
            request.add_header(name, header)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def sign_up(self, tag: str = "user") -> tuple[str, str, str]:
        """A new user, logged in: (id, email, access token)."""
        email = f"{tag}-{uuid.uuid4().hex[:8]}@example.com"
        password = "S3cure-" + uuid.uuid4().hex
        status, body = self.call(
            "POST",
            "users",
            "/api/users/",
            {"email": email, "password": password, "first_name": "Ada", "last_name": "Lovelace"},
        )
        assert status == 201, (status, body)
        status, tokens = self.call("POST", "users", "/api/token/", {"email": email, "password": password})
        assert status == 200, (status, tokens)
        return str(body["id"]), email, str(tokens["access"])

    def place_order(
        self,
        token: str,
        items: list[dict[str, Any]] | None = None,
        *,
        what: str = "the order",
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        """Place an order as soon as orders knows the customer (its replica follows user.created)."""
        order = {"items": items or [{"sku": "A", "quantity": 1, "unit_price": "1.00"}]}

        def place() -> dict[str, Any] | None:
            status, body = self.call("POST", "orders", "/api/orders/", order, token=token)
            return body if status == 201 else None

        return wait_for(place, timeout=timeout, what=what)

    def mails(self) -> list[str]:
        """Every message sent, one string each (Django's file backend writes one file per
        connection, and the notifications relay sends several messages through one)."""
        if not self.mail_dir.exists():
            return []
        return [
            chunk
            for path in sorted(self.mail_dir.iterdir())
            for chunk in path.read_text(errors="replace").split(MAIL_SEPARATOR)
            if chunk.strip()
        ]
