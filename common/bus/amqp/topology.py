"""Exchanges, queues and bindings of the suite, in one place.

- `events` (topic): every event, routing key = event type.
- `<svc>.events` (quorum): one queue per consuming service, bound to exactly the types it handles and
  to `<svc>.retry`, the key its own retries travel on, so a retry never reaches another service.
- `events.dlx` (direct) → `<svc>.events.dlq`: what a service could not handle, with the reason.

Queue arguments hold only what never changes (the type, the dead-letter route): RabbitMQ changes
an argument only by deleting the queue, so the delivery limit is a policy (`common.ops.rabbitmq_policies`).
"""

from __future__ import annotations

from collections.abc import Iterable

from amqp.exceptions import PreconditionFailed
from kombu import Connection, Exchange, Queue, binding

EVENTS_EXCHANGE = Exchange("events", type="topic", durable=True)
DEAD_LETTER_EXCHANGE = Exchange("events.dlx", type="direct", durable=True)


def queue_name(service: str) -> str:
    return f"{service}.events"


def retry_routing_key(service: str) -> str:
    return f"{service}.retry"


def dead_letter_queue_name(service: str) -> str:
    return f"{service}.events.dlq"


def service_queue(service: str, event_types: Iterable[str]) -> Queue:
    """The service's work queue: bound to its event types and to its own retry key."""
    keys = [*sorted(set(event_types)), retry_routing_key(service)]
    return Queue(
        queue_name(service),
        routing_key=retry_routing_key(service),
        bindings=[binding(EVENTS_EXCHANGE, routing_key=key) for key in keys],
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
            "x-dead-letter-routing-key": dead_letter_queue_name(service),
            # at-least-once dead-lettering (needs reject-publish): a parked message is never dropped.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def dead_letter_queue(service: str) -> Queue:
    return Queue(
        dead_letter_queue_name(service),
        exchange=DEAD_LETTER_EXCHANGE,
        routing_key=dead_letter_queue_name(service),
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


class QueueOutOfDate(Exception):
    """The broker holds the service's queue with arguments this version does not declare."""

    def __init__(self, service: str, refusal: str | None) -> None:
        super().__init__(
            f"{queue_name(service)} exists with other arguments than this version declares "
            f"({refusal}); an older version declared its delivery limit as an argument. Stop "
            f"{service}'s workers and run `python manage.py {service} declare_topology --migrate` "
            "once: it moves the queue, and what it holds, to the new declaration (docs/operations.md)"
        )


def declare(connection: Connection, service: str, event_types: Iterable[str]) -> None:
    """Declare everything a consuming service needs; idempotent, safe on every (re)connect."""
    channel = connection.default_channel
    EVENTS_EXCHANGE(channel).declare()
    DEAD_LETTER_EXCHANGE(channel).declare()
    dead_letter_queue(service)(channel).declare()
    try:
        service_queue(service, event_types)(channel).declare()
    except PreconditionFailed as exc:
        raise QueueOutOfDate(service, exc.reply_text) from None
