"""RabbitMQ for tests: a vhost of their own, removed afterwards, so runs never see each other."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

from kombu import Connection

from common.bus.broker import raw_channel

BROKER_ROOT = os.environ.get("TEST_AMQP_ROOT", "amqp://guest:guest@127.0.0.1:5672/")


def _rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([exe, "-q", *args], check=True, capture_output=True, timeout=60)


def create_vhost(prefix: str = "test") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    user = urlsplit(BROKER_ROOT).username or "guest"
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    return name


def delete_vhost(name: str) -> None:
    _rabbitmqctl("delete_vhost", name)


def amqp_url(vhost: str, *, user: str | None = None, password: str | None = None) -> str:
    parts = urlsplit(BROKER_ROOT)
    if user:
        parts = parts._replace(
            netloc=f"{quote(user)}:{quote(password or '')}@{parts.hostname}:{parts.port or 5672}"
        )
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def create_user(vhost: str, role: str, grants: dict[str, str]) -> tuple[str, str]:
    """A broker user for `role` (a service, or Flower) with exactly `grants` on `vhost`."""
    name, password = f"{role}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    _rabbitmqctl("add_user", name, password)
    _rabbitmqctl("set_permissions", "-p", vhost, name, grants["configure"], grants["write"], grants["read"])
    if role == "flower":
        _rabbitmqctl("set_user_tags", name, "monitoring")
    return name, password


def delete_user(name: str) -> None:
    _rabbitmqctl("delete_user", name)


def queue_depth(url: str, queue: str) -> int:
    with Connection(url) as conn:
        _, count, _ = raw_channel(conn).queue_declare(queue=queue, passive=True)
        return int(count)
