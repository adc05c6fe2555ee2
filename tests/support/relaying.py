"""Run the relay in the test process until the outbox is empty (Django test groups only)."""

from __future__ import annotations

from django.conf import settings

from common.bus.outbox.relay import Relay, RelayConfig


def relay_pending(batch_size: int = 100) -> int:
    """Publish every pending outbox row now; return how many rows were taken."""
    relay = Relay(
        RelayConfig(service=settings.SERVICE_NAME, amqp_url=settings.AMQP_URL, batch_size=batch_size)
    )
    total = 0
    try:
        while count := relay.relay_once():
            total += count
    finally:
        relay.publisher.close()
    return total
