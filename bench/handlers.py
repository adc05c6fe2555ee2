"""The consumer side of the pipeline benchmark: a handler that inserts one row (plus the inbox row
the bus adds), like the plain Celery task of the peer benchmark."""

from __future__ import annotations

from django.db import connection

from bench.contract import Pinged
from common.bus import HandlerRegistry
from common.contracts import Envelope

registry = HandlerRegistry("notifications")


@registry.handles(Pinged)
def on_pinged(event: Pinged, envelope: Envelope) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_effect (n, scheduled_at, handled_at) VALUES (%s, %s, clock_timestamp())",
            [event.n, event.scheduled_at],
        )
