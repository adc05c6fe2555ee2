"""Reading and housekeeping of the outbox table (the relay writes it; this reads and prunes it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Min
from django.utils import timezone

from common.bus.models import OutboxMessage

Status = OutboxMessage.Status


@dataclass(frozen=True)
class OutboxState:
    pending: int
    failed: int
    oldest_pending_age_seconds: float


def state(now: datetime | None = None) -> OutboxState:
    """Pending and failed counts and the age of the oldest pending row (0 when none)."""
    now = now or timezone.now()
    pending = OutboxMessage.objects.filter(status=Status.PENDING)
    oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
    return OutboxState(
        pending=pending.count(),
        failed=OutboxMessage.objects.filter(status=Status.FAILED).count(),
        oldest_pending_age_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
    )


MARK_PUBLISHED = """
UPDATE {table} SET status = %s, published_at = %s, last_error = '', claimed_until = NULL
WHERE id IN ({ids})
"""


def mark_published(ids: list[int], using: str = DEFAULT_DB_ALIAS) -> None:
    """One statement for the whole batch, in SQL: it runs for every batch, and building it through
    the ORM cost more CPU than the statement itself."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            MARK_PUBLISHED.format(table=OutboxMessage._meta.db_table, ids=", ".join(["%s"] * len(ids))),
            [Status.PUBLISHED.value, connection.ops.adapt_datetimefield_value(timezone.now()), *ids],
        )


def release(ids: list[int], using: str = DEFAULT_DB_ALIAS) -> None:
    """Back in line for the next relay at once (their publication failed or was abandoned)."""
    OutboxMessage.objects.using(using).filter(id__in=ids).update(claimed_until=None)


def prune(*, older_than: timedelta, chunk: int = 5000) -> int:
    """Delete published rows older than the retention, in chunks so no lock is held for long."""
    cutoff = timezone.now() - older_than
    total = 0
    while True:
        ids = list(
            OutboxMessage.objects.filter(status=Status.PUBLISHED, published_at__lt=cutoff)
            .order_by("published_at")
            .values_list("id", flat=True)[:chunk]
        )
        if not ids:
            return total
        total += OutboxMessage.objects.filter(id__in=ids).delete()[0]


def retry_failed(ids: list[int] | None = None) -> int:
    """Put failed rows back in line (after the operator fixed the cause). None means all."""
    failed = OutboxMessage.objects.filter(status=Status.FAILED)
    if ids is not None:
        failed = failed.filter(id__in=ids)
    return failed.update(status=Status.PENDING, last_error="")
