"""A service's dead letters for its operator: moved from `<svc>.events.dlq` into the `DeadLetter` table,
then listed, replayed and purged there (the relay moves them every few seconds, each tool first)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from time import monotonic
from typing import Any

from amqp.exceptions import AMQPError
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from kombu import Connection, Queue
from kombu.exceptions import OperationalError

from common.bus.amqp import topology
from common.bus.amqp.connection import bounded
from common.bus.amqp.wire import TaskMessage
from common.bus.consume import deadletters as broker
from common.bus.models import DeadLetter

log = logging.getLogger("common.bus.ops.deadletters")
NOT_REPLAYED = {*broker.FAILURE_HEADERS, *broker.BROKER_HEADERS}

BROKER_REASONS = {  # `x-death` reasons, for what RabbitMQ parked itself
    "delivery_limit": "returned unacked more often than the queue's delivery limit (the broker's "
    "backstop) allows: it kept killing the worker's main process, or workers kept losing their "
    "connection while holding it",
    "rejected": "rejected by the worker",
    "expired": "expired before it was handled",
}


def row_fields(raw: TaskMessage) -> dict[str, Any]:
    """`get_or_create` arguments of a parked message's row: why from our headers, or the broker's."""
    h = raw.headers
    why: dict[str, Any] = {name: h.get(header) for name, header in broker.PARKED_HEADERS.items()}
    if broker.PARKED_HEADERS["id"] not in h:  # parked by RabbitMQ itself
        deaths = h.get("x-death")
        death = deaths[0] if isinstance(deaths, list) and deaths else {}
        cause = str(death.get("reason") or h.get("x-first-death-reason") or "unknown")
        stamp = death.get("time")
        at = stamp.isoformat() if isinstance(stamp, datetime) else str(stamp or "")
        why.update(
            id=raw.properties.get("message_id")
            or hashlib.sha1(raw.body, usedforsecurity=False).hexdigest()[:32],
            kind=f"broker:{cause}",
            reason=BROKER_REASONS.get(cause, cause),
            exception_type="",
            attempts=h.get("x-delivery-count"),
            first_failure_at=at,
            last_failure_at=at,
        )
    ident, attempts = str(why.pop("id")), why.pop("attempts")
    why.update(
        routing_key=why["routing_key"] or raw.routing_key,
        event_type=h.get("task"),
        event_id=h.get("id"),
        content_type=raw.properties.get("content_type"),
        content_encoding=raw.properties.get("content_encoding"),
    )
    properties = {k: v for k, v in raw.properties.items() if k not in ("content_type", "content_encoding")}
    limits = {f.name: f.max_length for f in DeadLetter._meta.concrete_fields}
    texts = {name: str(value or "")[: limits[name]] for name, value in why.items()}
    return {
        "id": ident,
        "defaults": {
            **texts,
            "attempts": attempts if isinstance(attempts, int) else None,
            "body": raw.body,
            "headers": json.loads(json.dumps(h, default=str)),  # `x-death` holds timestamps
            "properties": json.loads(json.dumps(properties, default=str)),
        },
    }


class DeadLetterQueue:
    """Collecting acks the messages only once their rows are committed: a message is in the queue or
    the table (for a moment in both, and the row's id makes the second copy a no-op)."""

    def __init__(self, amqp_url: str, service: str) -> None:
        self.amqp_url, self.service = amqp_url, service
        self.queue = topology.dead_letter_queue_name(service)

    def collect(self, limit: int = 10_000) -> int:
        """One collector at a time (a table lock): a reader that collects first then sees every message
        another had taken, since that one commits its rows before the lock is free."""
        taken: list[Any] = []  # kombu messages
        with Connection(self.amqp_url, transport_options=bounded()) as conn:
            channel: Any = conn.channel()
            queue = Queue(self.queue, no_declare=True)(channel)
            with transaction.atomic():  # on SQLite, BEGIN IMMEDIATE takes the write lock
                if connection.vendor == "postgresql":  # self-conflicting; plain reads go on
                    with connection.cursor() as cursor:
                        cursor.execute(f"LOCK TABLE {DeadLetter._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
                while len(taken) < limit and (message := queue.get(no_ack=False)) is not None:
                    DeadLetter.objects.get_or_create(**row_fields(TaskMessage.of(message)))
                    taken.append(message)
            for message in taken:  # only once their rows are committed
                message.ack()
            channel.close()
        return len(taken)

    def page(self, limit: int = 200, *, collect: bool = True) -> tuple[list[DeadLetter], int]:
        """The first `limit` (oldest first), and how many there are."""
        if collect:
            self.collect()
        rows = DeadLetter.objects.order_by("parked_at", "id")
        return list(rows[:limit]), rows.count()

    def depth(self) -> int:
        return DeadLetter.objects.count()

    def chosen(self, ids: Iterable[str] | None) -> QuerySet[DeadLetter]:
        """All (None), or those whose id starts with one of `ids`; collected first."""
        self.collect()
        rows = DeadLetter.objects.order_by("parked_at", "id")
        if ids is None:
            return rows
        wanted = Q()
        for ident in ids:
            wanted |= Q(id__startswith=ident)
        return rows.filter(wanted) if wanted else rows.none()

    def replay(self, ids: Iterable[str] | None) -> list[DeadLetter]:
        """To this service's queue only, same event id; a row is deleted once its copy is confirmed (a
        replay cut short between the two is replayed again, and the inbox skips what was applied)."""
        letters = list(self.chosen(ids))
        with broker.confirmed_producer(self.amqp_url) as producer:
            for row in letters:
                headers = {k: v for k, v in row.headers.items() if k not in NOT_REPLAYED}
                headers.update({"retries": 0, "x-replayed-at": broker.now_iso()})
                properties = {
                    **row.properties,
                    "content_type": row.content_type,
                    "content_encoding": row.content_encoding,
                }
                raw = TaskMessage(bytes(row.body), headers, properties, row.routing_key)
                broker.send_back(producer, self.service, raw, headers)
                DeadLetter.objects.filter(pk=row.pk).delete()
        return letters

    def purge(self, ids: Iterable[str] | None) -> int:
        return int(self.chosen(ids).delete()[0])


class Collector:
    """The relay's housekeeping, every `every` seconds. While the broker is away it says so once per
    attempt, without a traceback, and tries again."""

    def __init__(self, amqp_url: str, service: str, every: float = 5.0) -> None:
        self.queue = DeadLetterQueue(amqp_url, service)
        self.every = every
        self._last = -every

    def __call__(self) -> int:
        now = monotonic()
        if now - self._last < self.every:
            return 0
        self._last = now
        try:
            return self.queue.collect(limit=1000)
        except (OSError, OperationalError, AMQPError) as exc:
            log.warning("relay: cannot collect dead letters from %s now: %s", self.queue.queue, exc)
            return 0


def prune(*, older_than: timedelta, chunk: int = 5000) -> int:
    """Dead letters expire: they hold whole messages (addresses, names) and nobody replays a
    months-old event. In chunks, so no lock is held for long."""
    cutoff = timezone.now() - older_than
    total = 0
    while True:
        ids = list(DeadLetter.objects.filter(parked_at__lt=cutoff).values_list("id", flat=True)[:chunk])
        if not ids:
            return total
        total += DeadLetter.objects.filter(id__in=ids).delete()[0]
