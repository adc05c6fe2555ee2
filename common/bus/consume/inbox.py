"""The consumer side of G2: an event id is applied at most once per service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from django.db import connection
from django.utils import timezone

from common.bus.models import InboxMessage
from common.contracts.envelope import Envelope

# The table is the model's; every value is a parameter.
_INSERT = "INSERT INTO " + InboxMessage._meta.db_table + " (event_id, event_type, handled_at) VALUES "  # noqa: S608
_ON_CONFLICT = " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"


def first_deliveries(envelopes: Sequence[Envelope]) -> set[UUID]:
    """Record the events in the caller's transaction, in one statement; the ids new now. A concurrent
    delivery of an id waits on its key until the first commits (or rolls back)."""
    sqlite = connection.vendor == "sqlite"  # Django stores a UUID there as hex
    now = timezone.now()
    params: list[UUID | str | datetime] = []
    for envelope in envelopes:
        params += [envelope.id.hex if sqlite else envelope.id, envelope.type, now]
    rows = ", ".join(["(%s, %s, %s)"] * len(envelopes))
    with connection.cursor() as cursor:
        cursor.execute(_INSERT + rows + _ON_CONFLICT, params)
        return {value if isinstance(value, UUID) else UUID(str(value)) for (value,) in cursor.fetchall()}


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
