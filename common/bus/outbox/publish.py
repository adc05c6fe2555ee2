"""`publish(event)`: the one way a service emits an event. It writes an outbox row in the caller's
transaction, so the event exists exactly when the change it announces commits."""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction

from common.bus import outbox
from common.bus.amqp.wire import envelope_message
from common.bus.outbox import on_commit
from common.contracts.base import Contract
from common.contracts.envelope import Envelope
from common.observability import context


class PublishOutsideTransaction(RuntimeError):
    """publish() needs the caller's transaction: an event must not outlive a rolled-back change."""


def publish(
    event: Contract, *, aggregate_id: str, aggregate_version: int, using: str = DEFAULT_DB_ALIAS
) -> Envelope:
    if not transaction.get_connection(using).in_atomic_block:
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
        causation_id=context.event_id.get(),  # the event being handled caused this one
    )
    dispatcher = on_commit.dispatcher() if settings.BUS_DISPATCH_ON_COMMIT else None
    if dispatcher is not None and not dispatcher.accepting():
        dispatcher = None  # the broker just failed it, or it is behind: the relays take this one
    envelope_json = envelope.model_dump_json()
    owner = dispatcher.owner if dispatcher else ""
    row_id = outbox.write(
        envelope, envelope_json, owner=owner, lease=settings.BUS_RELAY_LEASE_SECONDS, using=using
    )
    if dispatcher is not None:
        message = envelope_message(envelope, origin=settings.SERVICE_NAME, envelope_json=envelope_json)
        outgoing = outbox.Outgoing(row_id, message, using)
        transaction.on_commit(lambda: dispatcher.submit(outgoing), using=using)
    return envelope
