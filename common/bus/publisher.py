"""`publish(event)`: the one way a service emits an event.

Called inside the caller's `transaction.atomic()` block, so an event exists only if the change that
caused it commits. This first version sends after commit; the outbox makes it durable.
"""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.db import transaction
from kombu import Connection, Producer
from kombu.pools import connections

from common.bus import topology
from common.bus.wire import envelope_message
from common.contracts.base import Contract
from common.contracts.envelope import Envelope
from common.observability import context

log = logging.getLogger(__name__)


class PublishOutsideTransaction(RuntimeError):
    """publish() needs the caller's transaction: an event must not outlive a rolled-back change."""


def publish(event: Contract, *, aggregate_id: str, aggregate_version: int) -> Envelope:
    if not transaction.get_connection().in_atomic_block:
        raise PublishOutsideTransaction(
            f"publish({event.event_type}) must run inside transaction.atomic() "
            "together with the change it announces"
        )
    envelope = Envelope.wrap(
        event,
        producer=settings.SERVICE_NAME,
        aggregate_id=aggregate_id,
        aggregate_version=aggregate_version,
        correlation_id=context.correlation_id.get(),
        causation_id=context.causation_id.get(),
    )
    transaction.on_commit(partial(_send, envelope))
    return envelope


def _send(envelope: Envelope) -> None:
    message = envelope_message(envelope, origin=settings.SERVICE_NAME)
    conn = Connection(settings.AMQP_URL, transport_options={"confirm_publish": True})
    with connections[conn].acquire(block=True, timeout=10) as pooled:
        producer = Producer(pooled.default_channel)
        topology.declare_exchange(pooled)
        producer.publish(
            message.body,
            exchange=topology.EVENTS_EXCHANGE,
            routing_key=message.routing_key,
            headers=message.headers,
            serializer=None,
            content_type=message.properties["content_type"],
            content_encoding=message.properties["content_encoding"],
            delivery_mode=message.properties["delivery_mode"],
            correlation_id=message.properties["correlation_id"],
            message_id=message.properties["message_id"],
            retry=True,
        )
    log.info("published %s %s", envelope.type, envelope.id)
