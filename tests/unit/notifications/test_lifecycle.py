"""The contact replica under out-of-order events, the current address, cancellations, and never a
message to a deleted user (handlers run directly)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core import mail

from common.contracts import (
    Contract,
    Envelope,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    UserCreated,
    UserDeleted,
    UserUpdated,
)
from common.replicas import EarlierVersionMissing
from notifications_svc.notifications import handlers, services
from notifications_svc.notifications.models import Contact, Notification

pytestmark = pytest.mark.django_db(transaction=True)


def deliver(event: Contract, aggregate: uuid.UUID, version: int = 1) -> None:
    envelope = Envelope.wrap(
        event, producer=type(event).producer, aggregate_id=str(aggregate), aggregate_version=version
    )
    handler = {
        UserCreated: handlers.on_user_created,
        UserUpdated: handlers.on_user_updated,
        UserDeleted: handlers.on_user_deleted,
        OrderPlaced: handlers.on_order_placed,
        OrderCancelled: handlers.on_order_cancelled,
    }[type(event)]
    handler(event, envelope)  # type: ignore[operator]
    services.deliver_pending()  # what the relay's housekeeping does after the commit


def user_created(user: uuid.UUID, email: str = "ada@example.com") -> None:
    deliver(UserCreated(user_id=user, email=email, first_name="Ada", last_name="L"), user, 1)


def user_updated(user: uuid.UUID, version: int, email: str) -> None:
    deliver(
        UserUpdated(user_id=user, email=email, first_name="Ada", last_name="L", changed=("email",)),
        user,
        version,
    )


def order_placed(user: uuid.UUID) -> uuid.UUID:
    order = uuid.uuid4()
    deliver(
        OrderPlaced(
            order_id=order,
            customer_id=user,
            total=Decimal("2.00"),
            currency="EUR",
            lines=(OrderLine(sku="A", quantity=1, unit_price=Decimal("2.00")),),
        ),
        order,
    )
    return order


def order_cancelled(user: uuid.UUID, order: uuid.UUID, reason: str = "customer") -> None:
    deliver(OrderCancelled(order_id=order, customer_id=user, reason=reason), order, 2)  # type: ignore[arg-type]


def test_a_changed_email_is_used_for_the_next_message() -> None:
    user = uuid.uuid4()
    user_created(user)
    user_updated(user, 2, "new@example.com")
    order_placed(user)
    assert [m.to for m in mail.outbox] == [["ada@example.com"], ["new@example.com"]]


def test_out_of_order_updates_end_at_the_newest_version() -> None:
    user = uuid.uuid4()
    user_created(user)
    user_updated(user, 3, "v3@example.com")
    user_updated(user, 2, "v2@example.com")
    assert Contact.objects.values_list("email", "version").get(user_id=user) == ("v3@example.com", 3)


def test_an_update_before_the_creation_welcomes_at_the_newer_address() -> None:
    user = uuid.uuid4()
    user_updated(user, 2, "v2@example.com")
    user_created(user, "v1@example.com")
    assert Contact.objects.values_list("email", "version").get(user_id=user) == ("v2@example.com", 2)
    assert [m.to for m in mail.outbox] == [["v2@example.com"]]


def test_a_cancelled_order_is_notified() -> None:
    user = uuid.uuid4()
    user_created(user)
    order = order_placed(user)
    order_cancelled(user, order)
    assert list(Notification.objects.order_by("created_at").values_list("kind", flat=True)) == [
        "welcome",
        "order_placed",
        "order_cancelled",
    ]
    assert str(order) in mail.outbox[-1].subject


def test_nothing_is_ever_sent_to_a_deleted_user() -> None:
    user = uuid.uuid4()
    user_created(user)
    order = order_placed(user)
    sent = len(mail.outbox)
    deliver(UserDeleted(user_id=user), user, 3)
    user_updated(user, 2, "late@example.com")  # late: cannot revive the contact
    order_cancelled(user, order, reason="account_deleted")
    order_cancelled(user, order_placed(user), reason="customer")
    contact = Contact.objects.get(user_id=user)
    assert contact.deleted_at is not None and contact.email == "" and contact.version == 3
    assert len(mail.outbox) == sent


def test_a_cancellation_for_a_deleted_account_is_silent_even_before_the_deletion_arrives() -> None:
    user = uuid.uuid4()
    user_created(user)
    order = order_placed(user)
    sent = len(mail.outbox)
    order_cancelled(user, order, reason="account_deleted")  # overtook user.deleted
    assert len(mail.outbox) == sent


def test_a_deletion_before_the_creation_means_no_welcome() -> None:
    user = uuid.uuid4()
    deliver(UserDeleted(user_id=user), user, 2)
    user_created(user)
    assert mail.outbox == [] and Contact.objects.get(user_id=user).deleted_at is not None


def test_a_cancellation_that_overtook_its_placement_waits_for_it_and_mails_come_in_order() -> None:
    user = uuid.uuid4()
    user_created(user)
    order = uuid.uuid4()
    placed = OrderPlaced(
        order_id=order,
        customer_id=user,
        total=Decimal("2.00"),
        currency="EUR",
        lines=(OrderLine(sku="A", quantity=1, unit_price=Decimal("2.00")),),
    )
    mail.outbox.clear()

    # given order.cancelled (v2) delivered before order.placed (v1)
    with pytest.raises(EarlierVersionMissing):
        order_cancelled(user, order)
    assert mail.outbox == []  # retried later, nothing notified

    # when the placement arrives, and then the cancellation again (its retry)
    deliver(placed, order, 1)
    order_cancelled(user, order)

    # then the mails say it in order, once each; a late copy of either changes nothing
    deliver(placed, order, 1)
    order_cancelled(user, order)
    assert [m.subject for m in mail.outbox] == [f"Order {order} placed", f"Order {order} cancelled"]


def test_a_deletion_forgets_the_users_address_and_mails() -> None:
    """Notification rows kept the address and bodies after user.deleted cleared the contact."""
    user, other = uuid.uuid4(), uuid.uuid4()
    user_created(user)
    user_created(other)
    order_placed(user)
    deliver(UserDeleted(user_id=user), user, 3)
    kept = Notification.objects.filter(user_id=user)
    assert sorted(kept.values_list("kind", flat=True)) == ["order_placed", "welcome"]  # still countable
    assert set(kept.values_list("recipient", "subject", "body")) == {("", "", "")}
    assert Notification.objects.filter(user_id=other).exclude(recipient="").count() == 1  # others untouched
