"""Reactions of the notifications service to other services' events.

The contact replica applies only newer user versions and keeps a tombstone after deletion; a
notification goes to the contact's current address, and never to a deleted user; an order's events
are notified in their order (a "cancelled" that overtook its "placed" waits for it).
"""

from __future__ import annotations

from common.bus import HandlerRegistry
from common.contracts import (
    Envelope,
    OrderCancelled,
    OrderPlaced,
    UserCreated,
    UserDeleted,
    UserUpdated,
)
from common.replicas import EarlierVersionMissing
from notifications_svc.notifications import services
from notifications_svc.notifications.models import Notification
from notifications_svc.notifications.services import ContactNotKnownYet

registry = HandlerRegistry("notifications")


@registry.handles(UserCreated)
def on_user_created(event: UserCreated, envelope: Envelope) -> None:
    """Welcome the user, at their current address (a newer user.updated may have come first)."""
    services.apply_contact(
        user_id=event.user_id,
        version=envelope.aggregate_version,
        email=event.email,
        first_name=event.first_name,
    )
    contact = services.reachable_contact(event.user_id)
    if contact is None:
        return
    services.notify(
        contact=contact,
        kind=Notification.Kind.WELCOME,
        event_id=envelope.id,
        subject="Welcome aboard",
        body=f"Hi {contact.first_name or 'there'}, your account is ready.",
    )


@registry.handles(UserUpdated)
def on_user_updated(event: UserUpdated, envelope: Envelope) -> None:
    services.apply_contact(
        user_id=event.user_id,
        version=envelope.aggregate_version,
        email=event.email,
        first_name=event.first_name,
    )


@registry.handles(UserDeleted)
def on_user_deleted(event: UserDeleted, envelope: Envelope) -> None:
    services.apply_contact(user_id=event.user_id, version=envelope.aggregate_version, deleted=True)


@registry.handles(OrderPlaced, transient=(ContactNotKnownYet, EarlierVersionMissing))
def on_order_placed(event: OrderPlaced, envelope: Envelope) -> None:
    contact = services.reachable_contact(event.customer_id)
    if not services.next_order_event(order_id=event.order_id, version=envelope.aggregate_version):
        return
    if contact is None:
        return
    items = sum(line.quantity for line in event.lines)
    services.notify(
        contact=contact,
        kind=Notification.Kind.ORDER_PLACED,
        event_id=envelope.id,
        subject=f"Order {event.order_id} placed",
        body=f"We received your order of {items} item(s), total {event.total} {event.currency}.",
    )


@registry.handles(OrderCancelled, transient=(ContactNotKnownYet, EarlierVersionMissing))
def on_order_cancelled(event: OrderCancelled, envelope: Envelope) -> None:
    if event.reason == "account_deleted":
        return  # the account is gone: nothing is sent, whichever event arrives first
    contact = services.reachable_contact(event.customer_id)
    if not services.next_order_event(order_id=event.order_id, version=envelope.aggregate_version):
        return
    if contact is None:
        return
    services.notify(
        contact=contact,
        kind=Notification.Kind.ORDER_CANCELLED,
        event_id=envelope.id,
        subject=f"Order {event.order_id} cancelled",
        body="Your order has been cancelled" + (" by our team." if event.reason == "operator" else "."),
    )
