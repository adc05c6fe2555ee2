"""A tap on the `events` exchange: an exclusive queue that sees every event, for assertions."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from kombu import Connection, Queue, binding

from common.bus.amqp.topology import EVENTS_EXCHANGE
from tests.support.polling import wait_for


class EventTap:
    def __init__(self, routing_key: str = "#", url: str | None = None) -> None:
        self.connection = Connection(url or os.environ["AMQP_URL"])
        self.queue = Queue(
            f"tap-{uuid.uuid4().hex[:8]}",
            bindings=[binding(EVENTS_EXCHANGE, routing_key=routing_key)],
            exclusive=True,
            auto_delete=True,
        )
        channel = self.connection.default_channel
        EVENTS_EXCHANGE(channel).declare()
        self.queue(channel).declare()
        self.received: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        """Move whatever has arrived into `received`; return everything received so far."""
        bound = self.queue(self.connection.default_channel)
        while (message := bound.get(no_ack=True)) is not None:
            args, _, _ = json.loads(message.body or "[[], {}, {}]")
            self.received.append(
                {
                    "routing_key": message.delivery_info["routing_key"],
                    "headers": message.headers,
                    "properties": message.properties,
                    "envelope": args[0],
                }
            )
        return self.received

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return wait_for(
            lambda: len(self.drain()) >= count and self.received,
            timeout=timeout,
            what=f"{count} event(s) on the tap",
        )

    def close(self) -> None:
        self.connection.release()
