"""Reactions of the orders service to other services' events."""

from __future__ import annotations

from common.bus.handlers import HandlerRegistry
from common.contracts import Envelope, UserCreated
from orders_svc.orders.models import Customer

registry = HandlerRegistry("orders")


@registry.handles(UserCreated)
def on_user_created(event: UserCreated, envelope: Envelope) -> None:
    """Know the customer from now on. Idempotent: a redelivered event changes nothing."""
    Customer.objects.get_or_create(
        id=event.user_id, defaults={"email": event.email, "version": envelope.aggregate_version}
    )
