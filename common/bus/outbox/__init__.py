"""The outbox table: leases (on the database's clock, each with its holder), marks, reads and pruning."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import DateTimeField, Min, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from common.bus.amqp.confirms import BatchOutcome
from common.bus.models import OutboxMessage

log = logging.getLogger("common.bus.outbox")
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


# Leases are stamped and compared with the database's clock, so the hosts' clocks do not matter.
def db_now(connection: BaseDatabaseWrapper) -> str:
    """SQL for the database's current time, in the form Django stores datetimes."""
    if connection.vendor == "sqlite":
        return "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')"
    return "statement_timestamp()"


def db_later(connection: BaseDatabaseWrapper, seconds: float) -> str:
    """SQL for the database's current time plus `seconds` (a lease's end)."""
    if connection.vendor == "sqlite":
        return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '+{float(seconds):.3f} seconds')"
    return f"(statement_timestamp() + interval '{float(seconds):.3f} seconds')"


def lease_end(connection: BaseDatabaseWrapper, seconds: float) -> RawSQL:
    """The same, for a row written under a lease. Raw SQL: an ORM expression (`Now() + Value(...)`)
    is compiled anew for every row, which cost the committing process more CPU than the insert."""
    return RawSQL(db_later(connection, seconds), (), output_field=DateTimeField())  # noqa: S611 - no input


MARK_PUBLISHED = """
UPDATE {table} SET status = %s, published_at = {now}, last_error = '', claimed_until = NULL, claimed_by = ''
WHERE id IN ({ids}) AND claimed_by = %s
"""


def mark_published(ids: list[int], *, owner: str, using: str = DEFAULT_DB_ALIAS) -> int:
    """Mark `owner`'s rows published, in one statement (it runs for every batch; built through the
    ORM it cost more CPU than the statement itself); how many. A row whose lease another process
    has taken since is left to it: it publishes the row again and marks it."""
    connection = connections[using]
    table = OutboxMessage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            MARK_PUBLISHED.format(table=table, now=db_now(connection), ids=", ".join(["%s"] * len(ids))),
            [Status.PUBLISHED.value, *ids, owner],
        )
        return int(cursor.rowcount)


def held_by(owner: str, ids: list[int], using: str = DEFAULT_DB_ALIAS) -> QuerySet[OutboxMessage]:
    """`owner`'s pending rows among `ids`: the only ones it may release, fail or mark."""
    return OutboxMessage.objects.using(using).filter(id__in=ids, claimed_by=owner, status=Status.PENDING)


def release(ids: list[int], *, owner: str, using: str = DEFAULT_DB_ALIAS, reason: str = "") -> None:
    """Back in line for the next relay at once (their publication failed or was abandoned)."""
    held_by(owner, ids, using).update(
        claimed_until=None, claimed_by="", **({"last_error": reason} if reason else {})
    )


def fail(ids: list[int], reason: str, *, owner: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """Out of line until an operator retries them (`manage.py <svc> outbox retry`), with the reason."""
    log.error("outbox row(s) %s failed: %s", ids, reason)
    held_by(owner, ids, using).update(
        status=Status.FAILED, last_error=reason[:2000], claimed_until=None, claimed_by=""
    )


def settle(
    outcome: BatchOutcome, row_ids: dict[str, int], *, owner: str, using: str = DEFAULT_DB_ALIAS
) -> None:
    """What the broker said of a batch, written to its rows in `using` (`row_ids`: event id -> row
    id), whoever published it: confirmed rows are marked published, unroutable ones fail with the
    reason (no queue is bound for them: publishing again changes nothing), nacked ones go back in
    line."""
    confirmed = [row_ids[e] for e in outcome.confirmed if e in row_ids]
    if confirmed:
        mark_published(confirmed, owner=owner, using=using)
    failures: dict[str, list[int]] = {}
    for event_id, reason in outcome.unroutable.items():
        if event_id in row_ids:
            failures.setdefault(reason, []).append(row_ids[event_id])
    for reason, ids in failures.items():
        fail(ids, reason, owner=owner, using=using)
    nacked = [row_ids[e] for e in outcome.nacked if e in row_ids]
    if nacked:
        log.warning("broker nacked %d message(s); they stay pending", len(nacked))
        release(nacked, owner=owner, using=using, reason="nacked by the broker; will retry")


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
