"""`manage.py <svc> declare_topology [--migrate]`: before the first producer publishes, so events sent
before this service's worker ever started are queued for it, not unroutable. (Workers declare the same
on every connect; the delivery limit is a policy: `python -m common.ops.rabbitmq_policies`.)"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string
from kombu import Connection
from kombu.exceptions import OperationalError

from common.bus.amqp import topology
from common.bus.amqp.connection import redacted
from common.bus.consume.handlers import HandlerRegistry
from common.ops import queue_migration


class Command(BaseCommand):
    help = "Declare the events exchange and this service's queue, bindings and dead-letter queue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--migrate",
            action="store_true",
            help="re-create a queue an older version declared with other arguments, keeping every "
            "message it holds (stop the service's workers first)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        registry: HandlerRegistry = import_string(settings.EVENT_HANDLERS)
        service = settings.SERVICE_NAME
        queue, event_types = topology.queue_name(service), registry.event_types()
        try:
            with Connection(settings.AMQP_URL, connect_timeout=5) as conn:
                conn.ensure_connection(max_retries=1)
                if options["migrate"] and not queue_migration.migrate(
                    conn, settings.AMQP_URL, service, event_types, self.stdout.write
                ):
                    self.stdout.write(f"{queue} is already declared as this version does")
                topology.declare(conn, service, event_types)
        except (OperationalError, OSError) as exc:
            raise CommandError(f"cannot reach RabbitMQ at {redacted(settings.AMQP_URL)}: {exc}") from None
        except (topology.QueueOutOfDate, queue_migration.MigrationRefused) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{queue} bound to: {', '.join(event_types) or '(no event types yet)'}")
