"""Retries and dead letters on the broker: copies of a failed message, each confirmed and mandatory,
so the original is acked only once its copy is safe (the operator's view: `common.bus.ops`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Producer
from kombu.pools import producers

from common.bus.amqp import topology
from common.bus.amqp.connection import CONFIRM_TIMEOUT, bounded
from common.bus.amqp.wire import TaskMessage
from common.bus.internals import kombu as delays

# Why a message was parked, in the headers other code reads, by the `DeadLetter` field that keeps it.
PARKED_HEADERS = {
    "id": "x-dead-letter-id",
    "kind": "x-failure-kind",
    "exception_type": "x-exception-type",
    "reason": "x-exception-message",
    "traceback": "x-traceback",
    "attempts": "x-attempts",
    "service": "x-service",
    "first_failure_at": "x-first-failure-at",
    "last_failure_at": "x-last-failure-at",
    "routing_key": "x-original-routing-key",
}
H_CRASHES = "x-crashes"  # how many times a pool process died handling it
FAILURE_HEADERS = (*PARKED_HEADERS.values(), "x-last-error", H_CRASHES)
COPIED_PROPERTIES = ("correlation_id", "message_id", "priority", "reply_to", "timestamp", "type")
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


@dataclass(frozen=True)
class Failure:
    kind: str  # invalid | error | retries-exhausted | unknown-task | undecodable | not-a-task | crashed
    exception_type: str
    message: str
    traceback: str = ""
    attempts: int = 1


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@contextmanager
def confirmed_producer(amqp_url: str) -> Iterator[Producer]:
    """Not the worker's own connection, which does not confirm: its task events (many per message,
    harmless to lose) must not wait for the broker."""
    connection = Connection(amqp_url, transport_options={"confirm_publish": True, **bounded()})
    with producers[connection].acquire(block=True, timeout=10) as producer:
        yield producer


def publish_copy(
    producer: Producer, raw: TaskMessage, *, exchange: str, routing_key: str, headers: dict[str, Any]
) -> None:
    props = {k: v for k, v in raw.properties.items() if k in COPIED_PROPERTIES}
    # a copy is this service's own message (RabbitMQ refuses another user's user_id on it)
    props["user_id"] = producer.connection.userid  # type: ignore[union-attr]  # a confirmed producer's
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
        confirm_timeout=CONFIRM_TIMEOUT,  # then the copy is sent again on a new connection
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        **props,
    )


def _first_failure(raw: TaskMessage) -> dict[str, Any]:
    return {
        "x-first-failure-at": raw.headers.get("x-first-failure-at") or now_iso(),
        "x-original-routing-key": raw.headers.get("x-original-routing-key") or raw.routing_key,
    }


def park(producer: Producer, service: str, raw: TaskMessage, failure: Failure) -> str:
    """A copy with why, to the service's dead-letter queue; its dead-letter id."""
    lines = failure.traceback.strip().splitlines()
    if len(lines) > 25:
        lines = ["…", *lines[-25:]]
    why = {
        "id": str(uuid.uuid4()),
        "kind": failure.kind,
        "exception_type": failure.exception_type,
        "reason": failure.message[:2000],
        "traceback": "\n".join(lines)[-6000:],
        "attempts": failure.attempts,
        "service": service,
        "last_failure_at": now_iso(),
    }
    headers = {k: v for k, v in raw.headers.items() if k not in FAILURE_HEADERS}
    # parked as received, never inflated: a reader of the queue (the dlq tools) must not inflate it
    # either, so the copy says how it was compressed under another name
    if "compression" in headers:
        headers["x-refused-compression"] = headers.pop("compression")
    headers.update({PARKED_HEADERS[name]: value for name, value in why.items()})
    headers.update(_first_failure(raw))
    queue = topology.dead_letter_queue_name(service)
    publish_copy(
        producer, raw, exchange=topology.DEAD_LETTER_EXCHANGE.name, routing_key=queue, headers=headers
    )
    return str(why["id"])


def schedule_retry(
    producer: Producer, service: str, raw: TaskMessage, *, delay: int, attempt: int, error: str
) -> None:
    """A copy back to this service's queue only, `delay` s later. Without the broker's `x-death`:
    RabbitMQ before 4.0 silently drops a message dead-lettered by expiry through a delay queue it has
    expired in before, as a second trip through the same delay level would be (celery#9867)."""
    headers = {k: v for k, v in raw.headers.items() if k not in BROKER_HEADERS}
    headers.update({"retries": attempt, "x-last-error": error[:2000], **_first_failure(raw)})
    routing_key = delays.delay_routing_key(delay, topology.retry_routing_key(service))
    publish_copy(producer, raw, exchange=delays.delay_exchange(), routing_key=routing_key, headers=headers)


def send_back(producer: Producer, service: str, raw: TaskMessage, headers: dict[str, Any]) -> None:
    """At once, to this service's queue only (its own retry key)."""
    routing_key = topology.retry_routing_key(service)
    publish_copy(
        producer, raw, exchange=topology.EVENTS_EXCHANGE.name, routing_key=routing_key, headers=headers
    )


def redeliver_after_crash(producer: Producer, service: str, raw: TaskMessage, *, crashes: int) -> None:
    """Not a requeue: that loses our count, and the broker's own count also grows on every return of a
    message never started, so it cannot tell a poison message from an unlucky one."""
    headers = {k: v for k, v in raw.headers.items() if k not in BROKER_HEADERS}
    headers[H_CRASHES] = crashes
    send_back(producer, service, raw, headers)
