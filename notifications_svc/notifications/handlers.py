"""Reactions of the notifications service to other services' events."""

from __future__ import annotations

from common.bus.handlers import HandlerRegistry
from common.contracts import Envelope, OrderPlaced, UserCreated
from notifications_svc.notifications import services
from notifications_svc.notifications.models import Notification

registry = HandlerRegistry("notifications")


@registry.handles(UserCreated)
def on_user_created(event: UserCreated, envelope: Envelope) -> None:
    contact = services.remember_contact(
        user_id=event.user_id,
        email=event.email,
        first_name=event.first_name,
        version=envelope.aggregate_version,
    )
    services.notify(
        contact=contact,
        kind=Notification.Kind.WELCOME,
        event_id=envelope.id,
        subject="Welcome aboard",
        body=f"Hi {event.first_name or 'there'}, your account is ready.",
    )


@registry.handles(OrderPlaced, transient=(services.ContactNotKnownYet,))
def on_order_placed(event: OrderPlaced, envelope: Envelope) -> None:
    contact = services.contact_of(event.customer_id)
    items = sum(line.quantity for line in event.lines)
    services.notify(
        contact=contact,
        kind=Notification.Kind.ORDER_PLACED,
        event_id=envelope.id,
        subject=f"Order {event.order_id} placed",
        body=f"We received your order of {items} item(s), total {event.total}.",
    )
