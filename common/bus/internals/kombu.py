"""kombu internals.

Fast path (`BUS_FAST_PATHS`), consumer batching: `bytes_waiting` peeks at the socket under the
worker's broker connection, so the batcher hands events over as soon as nothing more is being read.

Always on: retries go through the delay exchanges and routing keys of kombu's native delayed
delivery (which Celery declares), the only delay a RabbitMQ 3.10 without plugins offers.
"""

from __future__ import annotations

import select
from typing import Any

from kombu.transport.native_delayed_delivery import MAX_LEVEL, calculate_routing_key, level_name


def delay_exchange() -> str:
    """The top delay level's exchange: a message enters there and falls through the levels."""
    return level_name(MAX_LEVEL)


def delay_routing_key(seconds: int, routing_key: str) -> str:
    """The routing key that holds a message `seconds` seconds, then delivers it with `routing_key`."""
    return calculate_routing_key(seconds, routing_key)


def bytes_waiting(consumer: Any) -> bool:
    """Whether the consumer's broker connection has bytes waiting: likely the next delivery."""
    try:
        sock = consumer.connection.connection.transport.sock
        return bool(select.select([sock], [], [], 0)[0])
    except Exception:  # noqa: BLE001 - no connection (or not a socket): nothing to wait for
        return False
