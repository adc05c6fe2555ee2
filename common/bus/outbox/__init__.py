"""The one owner of an outbox row's life: leases (on the database's clock, each with its holder), the
publication of rows, marks, reads and pruning, whoever publishes (the committing process, a relay)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Min, QuerySet
from django.utils import timezone

from common.bus import metrics, signals
from common.bus.amqp.confirms import BatchOutcome, BrokerUnavailable, ConfirmingPublisher
from common.bus.amqp.wire import TaskMessage
from common.bus.models import OutboxMessage
from common.contracts.envelope import Envelope
from common.observability.context import message_context

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
    return db_later(connection, 0)


def db_later(connection: BaseDatabaseWrapper, seconds: float) -> str:
    """SQL for the database's current time plus `seconds` (a lease's end)."""
    if connection.vendor == "sqlite":
        return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '+{float(seconds):.3f} seconds')"
    return f"(statement_timestamp() + interval '{float(seconds):.3f} seconds')"


INSERT = """
INSERT INTO {table} (event_id, event_type, aggregate_id, correlation_id, causation_id, envelope, status,
                     created_at, attempts, last_error, claimed_until, claimed_by)
VALUES (%s, %s, %s, %s, %s, %s, 'pending', %s, 0, '', {until}, %s) RETURNING id
"""

_FIELDS = {field.name: field for field in OutboxMessage._meta.concrete_fields}  # once, not per row


def write(envelope: Envelope, envelope_json: str, *, owner: str, lease: float, using: str) -> int:
    """Insert the row (leased to `owner` for `lease` seconds if it has one); its id. One statement
    the ORM does not compile per call: it was a third of the committing process's CPU per event."""
    connection = connections[using]

    def prep(name: str, value: Any) -> Any:
        return _FIELDS[name].get_db_prep_value(value, connection)

    values = [
        prep("event_id", envelope.id),
        envelope.type,
        envelope.aggregate_id,
        prep("correlation_id", envelope.correlation_id),
        prep("causation_id", envelope.causation_id),
        envelope_json,
        prep("created_at", envelope.occurred_at),
        owner,
    ]
    until = db_later(connection, lease) if owner else "NULL"
    with connection.cursor() as cursor:
        cursor.execute(INSERT.format(table=OutboxMessage._meta.db_table, until=until), values)
        return int(cursor.fetchone()[0])


def relaxed_commits(sender: object, connection: Any, **kwargs: Any) -> None:
    """`connection_created` receiver for the processes and threads that only publish rows: their
    writes (claims, marks, releases, pruning) need not wait for the WAL flush, since one lost in a
    crash only means an event published again, which consumers drop."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")


MARK_PUBLISHED = """
UPDATE {table} SET status = %s, published_at = {now}, last_error = '', claimed_until = NULL, claimed_by = ''
WHERE id IN ({ids}) AND claimed_by = %s
"""


def mark_published(ids: list[int], *, owner: str, using: str = DEFAULT_DB_ALIAS) -> int:
    """Mark `owner`'s rows published in one statement (it runs for every batch); how many. A row
    another process has leased since is left to it: it publishes the row again and marks it."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            MARK_PUBLISHED.format(
                table=OutboxMessage._meta.db_table, now=db_now(connection), ids=", ".join(["%s"] * len(ids))
            ),
            [Status.PUBLISHED.value, *ids, owner],
        )
        return int(cursor.rowcount)


def held_by(owner: str, ids: list[int], using: str = DEFAULT_DB_ALIAS) -> QuerySet[OutboxMessage]:
    """`owner`'s pending rows among `ids`: the only ones it may release, fail or mark."""
    return OutboxMessage.objects.using(using).filter(id__in=ids, claimed_by=owner, status=Status.PENDING)


NOTIFY_CHANNEL = "bus_outbox"  # what wakes the relays: committed unleased rows (a trigger), released rows


def wake_relays(using: str = DEFAULT_DB_ALIAS) -> None:
    """At the caller's commit (at once outside a transaction), on PostgreSQL."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])


def release(ids: list[int], *, owner: str, using: str = DEFAULT_DB_ALIAS, reason: str = "") -> None:
    """Back in line for the next relay at once (their publication failed or was abandoned)."""
    released = held_by(owner, ids, using).update(
        claimed_until=None, claimed_by="", **({"last_error": reason} if reason else {})
    )
    if released:
        wake_relays(using)


def fail(ids: list[int], reason: str, *, owner: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """Out of line until an operator retries them (`manage.py <svc> outbox retry`), with the reason."""
    log.error("outbox row(s) %s failed: %s", ids, reason)
    held_by(owner, ids, using).update(
        status=Status.FAILED, last_error=reason[:2000], claimed_until=None, claimed_by=""
    )


def settle(
    outcome: BatchOutcome, row_ids: dict[str, int], *, owner: str, using: str = DEFAULT_DB_ALIAS
) -> None:
    """What the broker said of a batch (`row_ids`: event id -> row id), whoever published it. An
    unroutable row fails: no queue is bound for it, so publishing it again changes nothing."""
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


class Outgoing(NamedTuple):
    """A leased row on its way to the broker: its message, and the database its outcome goes to."""

    id: int
    message: TaskMessage
    using: str = DEFAULT_DB_ALIAS


def _by_alias(rows: list[Outgoing]) -> dict[str, dict[str, int]]:
    grouped: dict[str, dict[str, int]] = {}
    for row in rows:
        grouped.setdefault(row.using, {})[row.message.properties["message_id"]] = row.id
    return grouped


class RowPublisher:
    """Publishes leased rows and writes what became of them, for the dispatcher and the relays
    alike, so both keep the same guarantees. A failed write leaves the rows to their lease."""

    def __init__(
        self, publisher: ConfirmingPublisher, *, service: str, owner: str, sender: str, log: logging.Logger
    ) -> None:
        self.publisher, self.service, self.owner, self.sender = publisher, service, owner, sender
        self.log = log
        self.published = 0  # confirmed by the broker

    def send(self, rows: list[Outgoing]) -> list[str]:
        signals.before_publish.send(self.sender, count=len(rows))
        return self.publisher.send([row.message for row in rows])

    def wait(self, sent: list[str]) -> BatchOutcome:
        outcome = self.publisher.wait(sent)
        signals.after_confirm.send(self.sender, confirmed=len(outcome.confirmed))
        return outcome

    def publish(self, rows: list[Outgoing]) -> BatchOutcome:
        """Send and wait, once more on a fresh connection if the kept one had gone stale (a broker
        restart while idle): nothing of a failed send is confirmed."""
        signals.before_publish.send(self.sender, count=len(rows))
        messages = [row.message for row in rows]
        try:
            return self.publisher.publish(messages)
        except BrokerUnavailable:
            return self.publisher.publish(messages)

    def settle(self, rows: list[Outgoing], outcome: BatchOutcome) -> None:
        for using, row_ids in _by_alias(rows).items():
            try:
                settle(outcome, row_ids, owner=self.owner, using=using)
            except DatabaseError as exc:  # the lease runs out: published again, deduplicated
                self.log.warning("%s: could not mark %d published row(s): %s", self.sender, len(row_ids), exc)
                connections[using].close()
        confirmed = set(outcome.confirmed)
        done = [row for row in rows if row.message.properties["message_id"] in confirmed]
        self.published += len(done)
        metrics.count_published(self.service, (row.message.routing_key for row in done))
        if self.log.isEnabledFor(logging.DEBUG):
            for row in done:
                with message_context(row.message.headers):
                    self.log.debug("published %s %s", row.message.routing_key, row.message.headers["id"])

    def release(self, rows: list[Outgoing]) -> None:
        for using, row_ids in _by_alias(rows).items():
            try:
                release(list(row_ids.values()), owner=self.owner, using=using)
            except DatabaseError as exc:
                self.log.warning("%s: could not release %d row(s): %s", self.sender, len(row_ids), exc)
                connections[using].close()


def prune(*, older_than: timedelta, types: Iterable[str] | None = None, chunk: int = 5000) -> int:
    """Delete published rows older than the retention (of these event types only, if given), in
    chunks so no lock is held for long."""
    cutoff = timezone.now() - older_than
    published = OutboxMessage.objects.filter(status=Status.PUBLISHED, published_at__lt=cutoff)
    if types is not None:
        published = published.filter(event_type__in=list(types))
    total = 0
    while True:
        ids = list(published.order_by("published_at").values_list("id", flat=True)[:chunk])
        if not ids:
            return total
        total += OutboxMessage.objects.filter(id__in=ids).delete()[0]


def retry_failed(ids: list[int] | None = None) -> int:
    """Put failed rows back in line (after the operator fixed the cause). None means all."""
    failed = OutboxMessage.objects.filter(status=Status.FAILED)
    if ids is not None:
        failed = failed.filter(id__in=ids)
    retried = failed.update(status=Status.PENDING, last_error="")
    if retried:
        wake_relays()
    return retried
