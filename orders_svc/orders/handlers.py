"""Reactions of the orders service to other services' events. The customer replica applies only
newer user versions and keeps a tombstone after deletion (`services.apply_customer`)."""

from __future__ import annotations

from common.bus import HandlerRegistry
from common.contracts import Envelope, UserCreated, UserDeleted, UserUpdated
from orders_svc.orders import services
from orders_svc.orders.models import Order

registry = HandlerRegistry("orders")


@registry.handles(UserCreated)
def on_user_created(event: UserCreated, envelope: Envelope) -> None:
    services.apply_customer(user_id=event.user_id, version=envelope.aggregate_version, email=event.email)


@registry.handles(UserUpdated)
def on_user_updated(event: UserUpdated, envelope: Envelope) -> None:
    """Also when it arrives before user.created: it carries the whole profile, so the customer is
    known from it, and the older user.created is then ignored."""
    services.apply_customer(user_id=event.user_id, version=envelope.aggregate_version, email=event.email)


@registry.handles(UserDeleted)
def on_user_deleted(event: UserDeleted, envelope: Envelope) -> None:
    """Tombstone the customer, then cancel what they still had open (order.cancelled for each)."""
    services.apply_customer(user_id=event.user_id, version=envelope.aggregate_version, deleted=True)
    services.cancel_open_orders(customer_id=event.user_id, reason=Order.CancelReason.ACCOUNT_DELETED)
