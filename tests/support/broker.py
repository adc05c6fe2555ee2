"""RabbitMQ for tests: a vhost of their own, removed afterwards, so runs never see each other.

`SYSTEM` is the machine's broker; a `RabbitNode` of a test's own (tests/support/rabbit_node.py)
has a `Broker` too. The module's functions are the system broker's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from kombu import Connection, Producer

from common.bus.amqp.connection import raw_channel
from common.bus.amqp.wire import TaskMessage

BROKER_ROOT = os.environ.get("TEST_AMQP_ROOT", "amqp://guest:guest@127.0.0.1:5672/")
OWN_NODE_CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


@dataclass(frozen=True)
class Broker:
    root: str  # amqp URL of its default vhost, as its administrator
    node: str | None = None  # rabbitmqctl's -n (None: the machine's node)
    members: tuple[int, ...] = ()  # a cluster's AMQP ports (a suite's proxies reach any of them)

    def cli(self) -> tuple[str, list[str]]:
        """rabbitmqctl for this broker, and the options that pick its node."""
        if self.node:  # a node of ours runs as this user, with this user's Erlang cookie: so does its CLI
            return OWN_NODE_CTL, ["-n", self.node]
        # the machine's node runs as rabbitmq; Debian's wrapper switches to that user
        return shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl", []

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        exe, target = self.cli()
        return subprocess.run(
            [exe, *target, "-q", *args], check=True, capture_output=True, text=True, timeout=timeout
        ).stdout

    def set_policies(self, vhost: str, env: dict[str, str]) -> None:
        """The queues' policies, as an operator sets them (`python -m common.ops.rabbitmq_policies`),
        with the delivery limit of `env`'s BUS_BROKER_DELIVERY_LIMIT."""
        exe, target = self.cli()
        node = ["--node", target[1]] if target else []
        subprocess.run(
            [
                sys.executable,
                "-m",
                "common.ops.rabbitmq_policies",
                "--vhost",
                vhost,
                "--rabbitmqctl",
                exe,
                *node,
            ],
            check=True,
            capture_output=True,
            env=env,
            timeout=120,
        )

    def policies(self, vhost: str) -> dict[str, dict[str, Any]]:
        """The policies of `vhost`, by name: their definitions."""
        listed = json.loads(self.ctl("list_policies", "-p", vhost, "--formatter", "json"))
        return {
            p["name"]: json.loads(p["definition"]) if isinstance(p["definition"], str) else p["definition"]
            for p in listed
        }

    def queues(self, vhost: str) -> dict[str, dict[str, Any]]:
        """The queues the broker holds in `vhost`, by name: type, durability, arguments as declared."""
        listed = json.loads(
            self.ctl(
                "list_queues", "-p", vhost, "name", "type", "durable", "arguments", "--formatter", "json"
            )
        )
        return {
            q["name"]: {
                "type": q["type"],
                "durable": q["durable"],
                "arguments": {k: v for k, _, v in q["arguments"]},
            }
            for q in listed
        }

    def bindings(self, vhost: str) -> set[tuple[str, str, str]]:
        """(exchange, queue, routing key) of every binding the broker holds in `vhost`."""
        listed = json.loads(self.ctl("list_bindings", "-p", vhost, "--formatter", "json"))
        return {
            (b["source_name"], b["destination_name"], b["routing_key"]) for b in listed if b["source_name"]
        }

    def create_vhost(self, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.ctl("add_vhost", name)
        self.ctl("set_permissions", "-p", name, urlsplit(self.root).username or "guest", ".*", ".*", ".*")
        return name

    def delete_vhost(self, name: str) -> None:
        self.ctl("delete_vhost", name)

    def amqp_url(
        self, vhost: str, *, user: str | None = None, password: str | None = None, port: int | None = None
    ) -> str:
        """The URL of `vhost`, as the administrator or `user`, on the broker's port or `port` (a proxy)."""
        parts = urlsplit(self.root)
        credentials = (
            f"{quote(user)}:{quote(password or '')}"
            if user
            else f"{parts.username or ''}:{parts.password or ''}"
        )
        netloc = f"{credentials}@{parts.hostname}:{port or parts.port or 5672}"
        return urlunsplit(parts._replace(netloc=netloc, path="/" + quote(vhost, safe="")))

    def create_user(self, vhost: str, role: str, grants: dict[str, str]) -> tuple[str, str]:
        """A broker user for `role` (a service, or Flower) with exactly `grants` on `vhost`."""
        name, password = f"{role}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        self.ctl("add_user", name, password)
        self.ctl("set_permissions", "-p", vhost, name, grants["configure"], grants["write"], grants["read"])
        if role == "flower":
            self.ctl("set_user_tags", name, "monitoring")
        return name, password

    def set_topic_permissions(self, vhost: str, user: str, exchange: str, *, write: str, read: str) -> None:
        """Which routing keys `user` may publish to (and bind from) `exchange` of a topic kind."""
        self.ctl("set_topic_permissions", "-p", vhost, user, exchange, write, read)

    def delete_user(self, name: str) -> None:
        self.ctl("delete_user", name)


SYSTEM = Broker(BROKER_ROOT)
queues = SYSTEM.queues
bindings = SYSTEM.bindings
create_vhost = SYSTEM.create_vhost
delete_vhost = SYSTEM.delete_vhost
amqp_url = SYSTEM.amqp_url
create_user = SYSTEM.create_user
set_topic_permissions = SYSTEM.set_topic_permissions
delete_user = SYSTEM.delete_user


def vhost_of(url: str) -> str:
    return unquote(urlsplit(url).path[1:]) or "/"


def queue_depth(url: str, queue: str) -> int:
    with Connection(url) as conn:
        _, count, _ = raw_channel(conn).queue_declare(queue=queue, passive=True)
        return int(count)


def publish_task(conn: Any, message: TaskMessage, *, exchange: Any, routing_key: str | None = None) -> None:
    """One task message as the suite's publishers send it, as the connection's own user."""
    Producer(conn.default_channel).publish(
        message.body,
        exchange=exchange,
        routing_key=routing_key or message.routing_key,
        headers=message.headers,
        content_type="application/json",
        content_encoding="utf-8",
        serializer=None,
        message_id=message.properties["message_id"],
        user_id=conn.userid,
        delivery_mode=2,
        declare=[],
    )
