"""The consumer side of G2: an event id is applied at most once per service."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from common.bus.models import InboxMessage
from common.contracts.envelope import Envelope

INSERT = (  # the table is the model's; every value is a parameter
    "INSERT INTO " + InboxMessage._meta.db_table + " (event_id, event_type, handled_at) "
    "VALUES (%s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING 1"
)


def first_delivery(envelope: Envelope) -> bool:
    """Record the event in the caller's transaction; False when it was already handled.

    One statement (it is on every event's path): a concurrent delivery of the same id waits on the
    key until the first commits, then sees the conflict; if the first rolls back, it goes ahead.
    """
    event_id = envelope.id.hex if connection.vendor == "sqlite" else envelope.id  # Django's UUID storage
    with connection.cursor() as cursor:
        cursor.execute(INSERT, [event_id, envelope.type, timezone.now()])
        return cursor.fetchone() is not None


def prune(*, older_than: timedelta, chunk: int = 5000) -> int:
    cutoff = timezone.now() - older_than
    total = 0
    while True:
        ids = list(
            InboxMessage.objects.filter(handled_at__lt=cutoff).values_list("event_id", flat=True)[:chunk]
        )
        if not ids:
            return total
        total += InboxMessage.objects.filter(event_id__in=ids).delete()[0]
