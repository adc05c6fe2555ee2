"""Dead letters and retries on the broker, and the operator's view of a dead-letter queue.

A message leaves its work queue one of three ways when it cannot be handled now:
- a retry: a copy goes to Celery's native delayed-delivery exchanges with the service's own retry key,
  so it comes back after the delay to this service's queue only;
- parked by us: a copy with the reason in `x-*` headers goes to `<svc>.events.dlq`;
- after a crash (its pool process died): a copy counting the crashes goes straight back to this
  service's queue; past `BUS_DELIVERY_LIMIT` crashes it is parked by us instead (kind "crashed");
- parked by RabbitMQ: past the broker's delivery limit, a high backstop (a policy) for what our count
  cannot see (a message returned again and again, e.g. one that kills the worker's main process),
  with the broker's `x-death` header as the reason.
Except in the last case the original is acked only after the copy is confirmed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import monotonic
from typing import TYPE_CHECKING, Any

from amqp.exceptions import AMQPError
from kombu import Connection, Producer, Queue
from kombu.exceptions import OperationalError
from kombu.pools import producers

from common.bus.amqp import topology
from common.bus.amqp.wire import TaskMessage
from common.bus.internals import kombu as delays

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from common.bus.models import DeadLetter as DeadLetterRow

log = logging.getLogger("common.bus.consume.deadletters")

H_ID = "x-dead-letter-id"
H_KIND = "x-failure-kind"
H_EXC_TYPE = "x-exception-type"
H_EXC_MESSAGE = "x-exception-message"
H_TRACEBACK = "x-traceback"
H_ATTEMPTS = "x-attempts"
H_SERVICE = "x-service"
H_FIRST = "x-first-failure-at"
H_LAST = "x-last-failure-at"
H_LAST_ERROR = "x-last-error"
H_ROUTING_KEY = "x-original-routing-key"
H_REPLAYED = "x-replayed-at"
H_CRASHES = "x-crashes"  # how many times a pool process died handling it
FAILURE_HEADERS = (
    H_CRASHES,
    H_ID,
    H_KIND,
    H_EXC_TYPE,
    H_EXC_MESSAGE,
    H_TRACEBACK,
    H_ATTEMPTS,
    H_SERVICE,
    H_FIRST,
    H_LAST,
    H_LAST_ERROR,
    H_ROUTING_KEY,
)
BROKER_HEADERS = (
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-delivery-count",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
)
TRACEBACK_LINES = 25


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def trim_traceback(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    if len(lines) > TRACEBACK_LINES:
        lines = ["…", *lines[-TRACEBACK_LINES:]]
    return "\n".join(lines)[-6000:]


@dataclass(frozen=True)
class Failure:
    kind: str  # invalid | error | retries-exhausted | unknown-task | undecodable | not-a-task
    exception_type: str
    message: str
    traceback: str = ""
    attempts: int = 1


@contextmanager
def confirmed_producer(amqp_url: str) -> Iterator[Producer]:
    """A pooled producer whose every publish waits for the broker's confirm: retries and dead
    letters must be safe before the original is acked. (The worker's own connection does not
    confirm: its task events, many per message and harmless to lose, must not wait.)"""
    connection = Connection(amqp_url, transport_options={"confirm_publish": True})
    with producers[connection].acquire(block=True, timeout=10) as producer:
        yield producer


def publish_copy(
    producer: Producer, raw: TaskMessage, *, exchange: str, routing_key: str, headers: dict[str, Any]
) -> None:
    """Publish a copy of `raw` (its body, properties and `headers`), persistent and mandatory."""
    props = {
        k: v
        for k, v in raw.properties.items()
        if k in ("correlation_id", "message_id", "priority", "reply_to", "timestamp", "type")
    }
    producer.publish(
        raw.body,
        exchange=exchange,
        routing_key=routing_key,
        headers=headers,
        content_type=raw.properties.get("content_type") or "application/octet-stream",
        content_encoding=raw.properties.get("content_encoding") or "binary",
        delivery_mode=2,
        # a copy that routes nowhere comes back (basic.return, raised while the confirm is awaited)
        # instead of being confirmed and dropped: the original is then requeued, not acked
        mandatory=True,
        retry=True,
        retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
        **props,
    )


def park(producer: Producer, service: str, raw: TaskMessage, failure: Failure) -> str:
    """Publish (confirmed) a copy with the reason to the service's dead-letter queue; its id."""
    dead_letter_id = str(uuid.uuid4())
    headers = {k: v for k, v in raw.headers.items() if k not in FAILURE_HEADERS}
    headers.update(
        {
            H_ID: dead_letter_id,
            H_KIND: failure.kind,
            H_EXC_TYPE: failure.exception_type,
            H_EXC_MESSAGE: failure.message[:2000],
            H_TRACEBACK: trim_traceback(failure.traceback),
            H_ATTEMPTS: failure.attempts,
            H_SERVICE: service,
            H_FIRST: raw.headers.get(H_FIRST) or now_iso(),
            H_LAST: now_iso(),
            H_ROUTING_KEY: raw.headers.get(H_ROUTING_KEY) or raw.routing_key,
        }
    )
    publish_copy(
        producer,
        raw,
        exchange=topology.DEAD_LETTER_EXCHANGE.name,
        routing_key=topology.dead_letter_queue_name(service),
        headers=headers,
    )
    return dead_letter_id


def schedule_retry(
    producer: Producer, service: str, raw: TaskMessage, *, delay: int, attempt: int, error: str
) -> None:
    """Publish (confirmed) a copy that comes back to this service's queue only, `delay` s later.

    The broker's `x-death` history is dropped: RabbitMQ before 4.0 silently discards a message that
    is dead-lettered by expiry through a delay queue it has already expired in (cycle detection),
    which a second trip through the same delay level would be (celery#9867).
    """
    headers = {k: v for k, v in raw.headers.items() if k not in BROKER_HEADERS}
    headers.update(
        {
            "retries": attempt,
            H_FIRST: raw.headers.get(H_FIRST) or now_iso(),
            H_LAST_ERROR: error[:2000],
            H_ROUTING_KEY: raw.headers.get(H_ROUTING_KEY) or raw.routing_key,
        }
    )
    publish_copy(
        producer,
        raw,
        exchange=delays.delay_exchange(),
        routing_key=delays.delay_routing_key(delay, topology.retry_routing_key(service)),
        headers=headers,
    )


def send_back(producer: Producer, service: str, raw: TaskMessage, headers: dict[str, Any]) -> None:
    """Publish a copy with `headers` to this service's queue only, at once (its own retry key)."""
    publish_copy(
        producer,
        raw,
        exchange=topology.EVENTS_EXCHANGE.name,
        routing_key=topology.retry_routing_key(service),
        headers=headers,
    )


def redeliver_after_crash(producer: Producer, service: str, raw: TaskMessage, *, crashes: int) -> None:
    """Publish (confirmed) a copy counting the crashes straight back to this service's queue. A
    requeue would do the same without the count, and the broker's own count also grows on every
    return of a message never started, so it cannot tell a poison message from an unlucky one."""
    headers = {k: v for k, v in raw.headers.items() if k not in BROKER_HEADERS}
    headers[H_CRASHES] = crashes
    send_back(producer, service, raw, headers)


# --- the operator's view --------------------------------------------------------------------------
@dataclass
class DeadLetter:
    id: str
    event_type: str
    event_id: str
    kind: str
    reason: str
    exception_type: str
    traceback: str
    attempts: int | None
    service: str
    first_failure_at: str
    last_failure_at: str
    routing_key: str
    body: bytes
    headers: dict[str, Any] = field(repr=False)
    content_type: str = ""


def describe(raw: TaskMessage) -> DeadLetter:
    h = raw.headers
    event_type, event_id = str(h.get("task") or ""), str(h.get("id") or "")
    if H_ID in h:
        kind, reason = str(h.get(H_KIND, "")), str(h.get(H_EXC_MESSAGE, ""))
        exc_type, attempts = str(h.get(H_EXC_TYPE, "")), h.get(H_ATTEMPTS)
        first, last = str(h.get(H_FIRST, "")), str(h.get(H_LAST, ""))
        ident = str(h[H_ID])
    else:  # parked by RabbitMQ itself
        deaths = h.get("x-death") or [{}]
        death = deaths[0] if isinstance(deaths, list) and deaths else {}
        broker_reason = str(death.get("reason") or h.get("x-first-death-reason") or "unknown")
        kind = f"broker:{broker_reason}"
        count = h.get("x-delivery-count")
        reason = {
            "delivery_limit": "returned unacked more often than the queue's delivery limit (the "
            "broker's backstop) allows: it kept killing the worker's main process, or workers kept "
            "losing their connection while holding it",
            "rejected": "rejected by the worker",
            "expired": "expired before it was handled",
        }.get(broker_reason, broker_reason)
        exc_type, attempts = "", count
        stamp = death.get("time")
        first = last = stamp.isoformat() if isinstance(stamp, datetime) else str(stamp or "")
        ident = (
            str(raw.properties.get("message_id") or "")
            or hashlib.sha1(raw.body, usedforsecurity=False).hexdigest()[:32]
        )
    return DeadLetter(
        id=ident,
        event_type=event_type,
        event_id=event_id,
        kind=kind,
        reason=reason,
        exception_type=exc_type,
        traceback=str(h.get(H_TRACEBACK, "")),
        attempts=int(attempts) if isinstance(attempts, int) else None,
        service=str(h.get(H_SERVICE, "")),
        first_failure_at=first,
        last_failure_at=last,
        routing_key=str(h.get(H_ROUTING_KEY) or raw.routing_key),
        body=raw.body,
        headers=h,
        content_type=str(raw.properties.get("content_type", "")),
    )


def _json_safe(value: dict[str, Any]) -> dict[str, Any]:
    """Headers as JSON (the broker's `x-death` holds timestamps)."""
    safe: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return safe


def _row_fields(raw: TaskMessage) -> dict[str, Any]:
    """`get_or_create` arguments of a dead letter's row: its id, and the rest as defaults."""
    letter = describe(raw)
    properties = {k: v for k, v in raw.properties.items() if k not in ("content_type", "content_encoding")}
    return {
        "id": letter.id,
        "defaults": {
            "event_type": letter.event_type[:200],
            "event_id": letter.event_id[:200],
            "kind": letter.kind[:64],
            "reason": letter.reason,
            "exception_type": letter.exception_type[:300],
            "traceback": letter.traceback,
            "attempts": letter.attempts,
            "service": letter.service[:64],
            "first_failure_at": letter.first_failure_at[:64],
            "last_failure_at": letter.last_failure_at[:64],
            "routing_key": letter.routing_key[:300],
            "content_type": str(raw.properties.get("content_type") or "")[:200],
            "content_encoding": str(raw.properties.get("content_encoding") or "")[:100],
            "body": raw.body,
            "headers": _json_safe(raw.headers),
            "properties": _json_safe(properties),
        },
    }


class DeadLetterQueue:
    """The dead letters of one service: collected from `<svc>.events.dlq` into the service's
    `DeadLetter` table, then listed, replayed and purged there.

    Collecting writes a row per message and acks the messages once the rows are committed: a message
    is in the queue or in the table (at worst in both for a moment, and the row's id makes a second
    copy a no-op). The relay collects every few seconds; each tool collects first, so it sees everything
    parked until then.
    """

    def __init__(self, amqp_url: str, service: str) -> None:
        self.amqp_url, self.service = amqp_url, service
        self.queue = topology.dead_letter_queue_name(service)

    def collect(self, limit: int = 10_000) -> int:
        """Move what waits in the queue into the table; how many were moved. One collector at a
        time (a table lock): a reader that collects first then sees every message another reader
        had taken, since that one commits its rows before the lock is free."""
        from django.db import connection, transaction

        from common.bus.models import DeadLetter as Row

        taken: list[Any] = []  # kombu messages
        with Connection(self.amqp_url) as conn:
            channel: Any = conn.channel()
            queue = Queue(self.queue, no_declare=True)(channel)
            with transaction.atomic():  # on SQLite, BEGIN IMMEDIATE takes the write lock
                if connection.vendor == "postgresql":  # self-conflicting; plain reads go on
                    with connection.cursor() as cursor:
                        cursor.execute(f"LOCK TABLE {Row._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
                while len(taken) < limit and (message := queue.get(no_ack=False)) is not None:
                    Row.objects.get_or_create(**_row_fields(TaskMessage.of(message)))
                    taken.append(message)
            for message in taken:  # only once their rows are committed
                message.ack()
            channel.close()
        return len(taken)

    def _rows(self) -> QuerySet[DeadLetterRow]:
        from common.bus.models import DeadLetter as Row

        return Row.objects.order_by("parked_at", "id")

    def page(self, limit: int = 200, *, collect: bool = True) -> tuple[list[DeadLetterRow], int]:
        """The first `limit` dead letters (oldest first) and how many there are."""
        if collect:
            self.collect()
        rows = self._rows()
        return list(rows[:limit]), rows.count()

    def depth(self) -> int:
        """Dead letters in the table (what the relay has collected): no broker needed."""
        return int(self._rows().count())

    def peek(self, limit: int = 200) -> list[DeadLetterRow]:
        return self.page(limit)[0]

    def find(self, ids: Iterable[str]) -> list[DeadLetterRow]:
        """The dead letters whose id starts with one of `ids`."""
        from django.db.models import Q

        self.collect()
        wanted = Q()
        for ident in ids:
            wanted |= Q(id__startswith=ident)
        return list(self._rows().filter(wanted)) if wanted else []

    def replay(self, ids: Iterable[str] | None) -> list[DeadLetterRow]:
        """Send the chosen dead letters (None = all) back to this service's queue only, same event
        id; each row is deleted once its copy is confirmed (a replay cut short between the two is
        replayed again, and the inbox skips what was applied)."""
        if ids is None:
            self.collect()
            letters = list(self._rows())
        else:
            letters = self.find(ids)
        replayed = []
        with confirmed_producer(self.amqp_url) as producer:
            for row in letters:
                headers = {
                    k: v
                    for k, v in row.headers.items()
                    if k not in FAILURE_HEADERS and k not in BROKER_HEADERS
                }
                headers.update({"retries": 0, H_REPLAYED: now_iso()})
                raw = TaskMessage(
                    body=bytes(row.body),
                    headers=headers,
                    properties={
                        **row.properties,
                        "content_type": row.content_type,
                        "content_encoding": row.content_encoding,
                    },
                    routing_key=row.routing_key,
                )
                send_back(producer, self.service, raw, headers)
                self._rows().filter(pk=row.pk).delete()
                replayed.append(row)
        return replayed

    def purge(self, ids: Iterable[str] | None) -> int:
        if ids is None:
            self.collect()
            deleted, _ = self._rows().delete()
            return int(deleted)
        deleted, _ = self._rows().filter(pk__in=[row.pk for row in self.find(ids)]).delete()
        return int(deleted)


class Collector:
    """The relay's housekeeping: collect the service's dead letters every `every` seconds. While
    the broker is away it says so once per attempt, without a traceback, and tries again."""

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
