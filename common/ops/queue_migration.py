"""Move a service's work queue to this version's declaration without losing an event
(`python manage.py <svc> declare_topology --migrate`).

Versions before the delivery limit became a policy declared it as a queue argument, and RabbitMQ
lets no queue change its arguments: the queue must be deleted and declared again. What it holds,
and what producers publish meanwhile, waits in a hand-over queue bound to the same keys:

1. declare `<svc>.events.handover`, bound like the queue: from now on each event reaches both;
2. move every message of the old queue into it (confirmed copy, then ack), delete the old queue;
3. declare the queue as this version does; unbind the hand-over queue, so events reach the new
   queue only, move its messages back, delete it.

An event published during the move may end up in the queue twice: the inbox makes a duplicate
harmless. The service's workers must be stopped first (a message a worker holds unacked would go
with the deleted queue); the migration refuses to start while the queue has consumers. Each step
is safe to run again: a migration cut short resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from amqp.exceptions import NotFound, PreconditionFailed
from kombu import Connection, Queue, binding

from common.bus.amqp import topology
from common.bus.amqp.connection import raw_channel
from common.bus.amqp.wire import TaskMessage
from common.bus.consume import deadletters

Say = Callable[[str], None]


def handover_queue_name(service: str) -> str:
    return f"{service}.events.handover"


class MigrationRefused(Exception):
    pass


def migrate(
    connection: Connection, amqp_url: str, service: str, event_types: Iterable[str], say: Say
) -> bool:
    """Bring the service's queue to this version's declaration; False if it already was."""
    types = sorted(set(event_types))
    queue = topology.service_queue(service, types)
    handover = _handover_queue(service, types)
    handing_over = _exists(connection, handover.name)
    if not handing_over and _declares(connection, queue):
        return False
    if not _declares(connection, queue):  # the old queue is still there (first run, or resumed)
        consumers = _consumers(connection, queue.name)
        if consumers:
            raise MigrationRefused(
                f"{queue.name} has {consumers} consumer(s): stop {service}'s workers first (a message "
                "a worker holds unacked would be lost with the queue)"
            )
        handover(connection.default_channel).declare()
        # what the queue held before the hand-over queue was bound; what came after is in both
        held = _depth(connection, queue.name)
        moved = _move(connection, amqp_url, queue.name, routing_key=f"{service}.handover", limit=held)
        say(f"moved {moved} message(s) from {queue.name} to {handover.name}")
        raw_channel(connection).queue_delete(queue.name)
    topology.declare(connection, service, types)
    for key in _keys(service, types):
        raw_channel(connection).queue_unbind(handover.name, topology.EVENTS_EXCHANGE.name, key)
    moved = _move(connection, amqp_url, handover.name, routing_key=topology.retry_routing_key(service))
    say(f"moved {moved} message(s) back to {queue.name}, declared as this version does")
    raw_channel(connection).queue_delete(handover.name)
    return True


def _keys(service: str, types: list[str]) -> list[str]:
    return [*types, topology.retry_routing_key(service)]


def _handover_queue(service: str, types: list[str]) -> Queue:
    keys = [*_keys(service, types), f"{service}.handover"]
    return Queue(
        handover_queue_name(service),
        bindings=[binding(topology.EVENTS_EXCHANGE, routing_key=key) for key in keys],
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


@contextmanager
def _own_channel(connection: Connection) -> Iterator[Any]:
    """A channel of its own: a refusal (a channel error) closes it, not the connection's default."""
    channel: Any = connection.channel()
    try:
        yield channel
    finally:
        with suppress(Exception):  # already closed by the broker's refusal
            channel.close()


def _declares(connection: Connection, queue: Queue) -> bool:
    """Whether the queue can be declared as this version declares it."""
    with _own_channel(connection) as channel:
        try:
            queue(channel).declare()
        except PreconditionFailed:
            return False
    return True


def _exists(connection: Connection, name: str) -> bool:
    with _own_channel(connection) as channel:
        try:
            channel.queue_declare(name, passive=True)
        except NotFound:
            return False
    return True


def _consumers(connection: Connection, name: str) -> int:
    with _own_channel(connection) as channel:
        return int(channel.queue_declare(name, passive=True).consumer_count)


def _depth(connection: Connection, name: str) -> int:
    with _own_channel(connection) as channel:
        return int(channel.queue_declare(name, passive=True).message_count)


def _move(
    connection: Connection, amqp_url: str, source: str, *, routing_key: str, limit: int | None = None
) -> int:
    """Copy the messages of `source` (the first `limit`, or all) to the events exchange under
    `routing_key` (confirmed, mandatory), acking each there once its copy is confirmed."""
    moved = 0
    with _own_channel(connection) as channel, deadletters.confirmed_producer(amqp_url) as producer:
        while limit is None or moved < limit:
            message = Queue(source, no_declare=True)(channel).get(no_ack=False)
            if message is None:
                break
            raw = TaskMessage.of(message)
            deadletters.publish_copy(
                producer,
                raw,
                exchange=topology.EVENTS_EXCHANGE.name,
                routing_key=routing_key,
                headers=raw.headers,
            )
            message.ack()
            moved += 1
    return moved
