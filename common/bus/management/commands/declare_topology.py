"""`manage.py <svc> declare_topology`: declare the service's exchanges and queues now.

Run before the first producer publishes, so events sent before this service's worker ever started
are queued for it rather than unroutable. Workers declare the same on every (re)connect.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string
from kombu import Connection
from kombu.exceptions import OperationalError

from common.bus import topology
from common.bus.broker import redacted
from common.bus.handlers import HandlerRegistry


class Command(BaseCommand):
    help = "Declare the events exchange and this service's queue, bindings and dead-letter queue."

    def handle(self, *args: Any, **options: Any) -> None:
        registry: HandlerRegistry = import_string(settings.EVENT_HANDLERS)
        try:
            with Connection(settings.AMQP_URL, connect_timeout=5) as conn:
                conn.ensure_connection(max_retries=1)
                topology.declare(
                    conn,
                    settings.SERVICE_NAME,
                    registry.event_types(),
                    delivery_limit=settings.BUS_DELIVERY_LIMIT,
                )
        except (OperationalError, OSError) as exc:
            raise CommandError(f"cannot reach RabbitMQ at {redacted(settings.AMQP_URL)}: {exc}") from None
        bound = ", ".join(registry.event_types()) or "(no event types yet)"
        self.stdout.write(f"{topology.queue_name(settings.SERVICE_NAME)} bound to: {bound}")
