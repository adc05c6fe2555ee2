"""RabbitMQ for tests: a vhost of their own, removed afterwards, so runs never see each other."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from kombu import Connection

from common.bus.broker import raw_channel

BROKER_ROOT = os.environ.get("TEST_AMQP_ROOT", "amqp://guest:guest@127.0.0.1:5672/")


def _rabbitmqctl(*args: str) -> str:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    return subprocess.run([exe, "-q", *args], check=True, capture_output=True, text=True, timeout=60).stdout


def vhost_of(url: str) -> str:
    return unquote(urlsplit(url).path[1:]) or "/"


def queues(vhost: str) -> dict[str, dict[str, Any]]:
    """The queues the broker holds in `vhost`, by name: type, durability and arguments as declared."""
    listed = json.loads(
        _rabbitmqctl(
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


def bindings(vhost: str) -> set[tuple[str, str, str]]:
    """(exchange, queue, routing key) of every binding the broker holds in `vhost`."""
    listed = json.loads(_rabbitmqctl("list_bindings", "-p", vhost, "--formatter", "json"))
    return {(b["source_name"], b["destination_name"], b["routing_key"]) for b in listed if b["source_name"]}


def create_vhost(prefix: str = "test") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    user = urlsplit(BROKER_ROOT).username or "guest"
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    return name


def delete_vhost(name: str) -> None:
    _rabbitmqctl("delete_vhost", name)


def amqp_url(
    vhost: str, *, user: str | None = None, password: str | None = None, port: int | None = None
) -> str:
    """The URL of `vhost`, as the root user or `user`, on the broker's port or `port` (a proxy)."""
    parts = urlsplit(BROKER_ROOT)
    credentials = (
        f"{quote(user)}:{quote(password or '')}" if user else f"{parts.username or ''}:{parts.password or ''}"
    )
    netloc = f"{credentials}@{parts.hostname}:{port or parts.port or 5672}"
    return urlunsplit(parts._replace(netloc=netloc, path="/" + quote(vhost, safe="")))


def create_user(vhost: str, role: str, grants: dict[str, str]) -> tuple[str, str]:
    """A broker user for `role` (a service, or Flower) with exactly `grants` on `vhost`."""
    name, password = f"{role}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    _rabbitmqctl("add_user", name, password)
    _rabbitmqctl("set_permissions", "-p", vhost, name, grants["configure"], grants["write"], grants["read"])
    if role == "flower":
        _rabbitmqctl("set_user_tags", name, "monitoring")
    return name, password


def set_topic_permissions(vhost: str, user: str, exchange: str, *, write: str, read: str) -> None:
    """Which routing keys `user` may publish to (and bind from) `exchange` of a topic kind."""
    _rabbitmqctl("set_topic_permissions", "-p", vhost, user, exchange, write, read)


def delete_user(name: str) -> None:
    _rabbitmqctl("delete_user", name)


def queue_depth(url: str, queue: str) -> int:
    with Connection(url) as conn:
        _, count, _ = raw_channel(conn).queue_declare(queue=queue, passive=True)
        return int(count)
