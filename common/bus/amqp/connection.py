"""Reaching RabbitMQ: one check with a one-line answer, for `make run` and the commands."""

from __future__ import annotations

import sys
from typing import Any

from kombu import Connection

from common.settings.env import amqp_url

# A link that goes quiet without closing (a lost route, a NAT entry dropped) says nothing: only a
# heartbeat or a timeout tells. Without them a wait for the broker's reply (a confirm, a channel's
# close, a basic.get) lasts for ever, and a worker or relay waiting in one stops for good.
HEARTBEAT = 10  # seconds, where the owner sends them (a worker's consumer): a dead link shows in two
READ_TIMEOUT = 15.0  # seconds a blocking read or write waits on any connection before it counts as dead
CONFIRM_TIMEOUT = 10.0  # seconds a worker's retry or dead-letter copy waits for its confirm


def bounded() -> dict[str, float]:
    """kombu transport options (py-amqp's `read_timeout`, `write_timeout`) for every connection."""
    return {"read_timeout": READ_TIMEOUT, "write_timeout": READ_TIMEOUT}


def raw_channel(connection: Connection) -> Any:
    """The connection's AMQP channel, for the queue operations kombu's typing does not show."""
    return connection.default_channel


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def unreachable_reason(url: str, timeout: float = 3.0) -> str | None:
    """None when the broker accepts a connection, else why not."""
    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=int(timeout))
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"{type(exc).__name__}: {exc}"
    return None


def main() -> int:
    url = amqp_url()
    reason = unreachable_reason(url)
    if reason is None:
        return 0
    print(
        f"RabbitMQ is not reachable at {redacted(url)} ({reason}). Start it with "
        "`rabbitmq-server -detached` (or `docker compose up -d rabbitmq`), or set AMQP_URL.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
