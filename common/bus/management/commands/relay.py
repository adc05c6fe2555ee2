"""`manage.py <svc> relay`: publish this service's outbox to RabbitMQ, until stopped.

SIGTERM or Ctrl-C stops it after the batch in flight (which is then either marked or left pending).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.backends.signals import connection_created
from django.utils.module_loading import import_string

from common.bus import outbox
from common.bus.amqp.confirms import BrokerUnavailable
from common.bus.consume import inbox
from common.bus.ops import deadletters
from common.bus.ops.deadletters import Collector
from common.bus.outbox import relaxed_commits
from common.bus.outbox.relay import Relay, RelayConfig
from common.contracts.base import personal_types
from common.observability import metrics
from common.observability.http import serve
from common.observability.logging import set_role


def pruning() -> tuple[Callable[[], int], ...]:
    """What the relay prunes besides its published rows: handled ids past their retention,
    published events that carry personal data (at once, on the relay's next prune), and expired
    dead letters."""
    return (
        partial(inbox.prune, older_than=timedelta(hours=settings.BUS_INBOX_RETENTION_HOURS)),
        partial(outbox.prune, older_than=timedelta(0), types=personal_types()),
        partial(deadletters.prune, older_than=timedelta(days=settings.BUS_DEAD_LETTER_RETENTION_DAYS)),
    )


class Command(BaseCommand):
    help = "Publish committed outbox rows to the events exchange (long-running)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=settings.BUS_RELAY_BATCH_SIZE)
        parser.add_argument("--poll-interval", type=float, default=settings.BUS_RELAY_POLL_SECONDS)
        parser.add_argument("--once", action="store_true", help="publish what is pending now, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError(f"--batch-size must be at least 1, got {options['batch_size']}")
        if options["poll_interval"] <= 0:
            raise CommandError(f"--poll-interval must be positive, got {options['poll_interval']}")
        set_role("relay")
        connection_created.connect(relaxed_commits)
        stop = threading.Event()
        relay = Relay(
            RelayConfig(
                service=settings.SERVICE_NAME,
                amqp_url=settings.AMQP_URL,
                batch_size=options["batch_size"],
                poll_interval=options["poll_interval"],
                confirm_timeout=settings.BUS_RELAY_CONFIRM_TIMEOUT,
                retention=timedelta(hours=settings.BUS_OUTBOX_RETENTION_HOURS),
                pruning=pruning(),
                lease=timedelta(seconds=settings.BUS_RELAY_LEASE_SECONDS),
                housekeeping=(
                    Collector(settings.AMQP_URL, settings.SERVICE_NAME),
                    *(import_string(path) for path in settings.BUS_HOUSEKEEPING),
                ),
            ),
            stop=stop,
        )
        if options["once"]:
            try:
                relay.drain()
            except BrokerUnavailable as exc:
                raise CommandError(f"broker unavailable: {exc}") from None
            finally:
                relay.publisher.close()
            self.stdout.write(f"published {relay.published_total}")
            return

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        if settings.RELAY_HTTP_PORT:
            registry = metrics.registry(counters=True)
            serve(settings.RELAY_HTTP_PORT, registry, relay.not_ready)
        relay.run()
