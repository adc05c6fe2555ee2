"""Notification handlers run directly; the API read through the HTTP interface."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core import mail
from rest_framework.test import APIClient

from common.contracts import Envelope, OrderLine, OrderPlaced, UserCreated
from notifications_svc.notifications import services
from notifications_svc.notifications.handlers import on_order_placed, on_user_created
from notifications_svc.notifications.models import Contact, Notification
from notifications_svc.notifications.services import ContactNotKnownYet
from tests.support.tokens import access_token

pytestmark = pytest.mark.django_db(transaction=True)


def created(email: str = "ada@example.com") -> tuple[UserCreated, Envelope]:
    event = UserCreated(user_id=uuid.uuid4(), email=email, first_name="Ada", last_name="L")
    return event, Envelope.wrap(event, producer="users", aggregate_id=str(event.user_id), aggregate_version=1)


def placed(customer: uuid.UUID) -> tuple[OrderPlaced, Envelope]:
    event = OrderPlaced(
        order_id=uuid.uuid4(),
        customer_id=customer,
        lines=(OrderLine(sku="A", quantity=2, unit_price=Decimal("2.50")),),
        total=Decimal("5.00"),
        currency="EUR",
    )
    return event, Envelope.wrap(
        event, producer="orders", aggregate_id=str(event.order_id), aggregate_version=1
    )


def test_user_created_stores_the_contact_and_sends_a_welcome() -> None:
    event, envelope = created()

    on_user_created(event, envelope)
    services.deliver_pending()

    contact = Contact.objects.get()
    assert (contact.user_id, contact.email, contact.version) == (event.user_id, "ada@example.com", 1)
    notification = Notification.objects.get()
    assert (notification.kind, notification.status, notification.recipient) == (
        "welcome",
        "sent",
        "ada@example.com",
    )
    assert notification.sent_at is not None
    [sent] = mail.outbox
    assert sent.to == ["ada@example.com"] and sent.subject == "Welcome aboard"


def test_a_redelivered_event_notifies_once() -> None:
    event, envelope = created()
    on_user_created(event, envelope)
    services.deliver_pending()
    on_user_created(event, envelope)
    services.deliver_pending()
    assert Notification.objects.count() == 1
    assert len(mail.outbox) == 1


def test_order_placed_confirms_to_the_contact() -> None:
    user, user_envelope = created()
    on_user_created(user, user_envelope)
    order, order_envelope = placed(user.user_id)

    on_order_placed(order, order_envelope)
    services.deliver_pending()

    confirmation = Notification.objects.get(kind="order_placed")
    assert confirmation.recipient == "ada@example.com"
    assert str(order.order_id) in confirmation.subject
    assert mail.outbox[-1].to == ["ada@example.com"]
    assert "total 5.00 EUR" in mail.outbox[-1].body


def test_order_placed_before_the_contact_is_known_is_a_transient_failure() -> None:
    order, envelope = placed(uuid.uuid4())
    with pytest.raises(ContactNotKnownYet):
        on_order_placed(order, envelope)
    assert not Notification.objects.exists()
    assert mail.outbox == []


def test_callers_list_only_their_own_notifications() -> None:
    alice, alice_envelope = created("alice@example.com")
    bob, bob_envelope = created("bob@example.com")
    on_user_created(alice, alice_envelope)
    on_user_created(bob, bob_envelope)

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(alice.user_id)}")
    body = client.get("/api/notifications/").json()

    assert [(n["kind"], n["recipient"]) for n in body["results"]] == [("welcome", "alice@example.com")]
    assert set(body["results"][0]) == {
        "id",
        "kind",
        "status",
        "recipient",
        "subject",
        "created_at",
        "sent_at",
    }
    assert APIClient().get("/api/notifications/").status_code == 401
