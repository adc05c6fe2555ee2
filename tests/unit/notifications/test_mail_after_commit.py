"""Mail leaves only after the handler's transaction commits: a batch that rolls back (one event in
it fails) sends nothing, and its events, run again one by one, mail once each. What a crash after
the commit left unsent is mailed by the housekeeping sweep, once."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from common.bus.consumer import Parsed, dispatch, dispatch_batch, parse
from common.contracts import Contract, Envelope, OrderLine, OrderPlaced, UserCreated
from notifications_svc.notifications import services
from notifications_svc.notifications.handlers import registry
from notifications_svc.notifications.models import Notification
from notifications_svc.notifications.services import ContactNotKnownYet

pytestmark = pytest.mark.django_db(transaction=True)


def parsed(event: Contract, aggregate: str) -> Parsed:
    envelope = Envelope.wrap(event, producer="t", aggregate_id=aggregate, aggregate_version=1)
    return parse(registry, (envelope.to_json_dict(),), {}, task_name=envelope.type)


def sign_up(n: int) -> Parsed:
    user = uuid.uuid4()
    return parsed(
        UserCreated(user_id=user, email=f"u{n}@example.com", first_name="A", last_name="B"), str(user)
    )


def test_a_failed_batch_mails_nothing_and_its_rerun_mails_each_welcome_once() -> None:
    # given a batch of sign-ups with an order for a customer notifications does not know yet
    stranger = OrderPlaced(
        order_id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        lines=(OrderLine(sku="A", quantity=1, unit_price=Decimal("1.00")),),
        total=Decimal("1.00"),
        currency="EUR",
    )
    batch = [sign_up(1), sign_up(2), parsed(stranger, "o"), sign_up(3)]

    # when the batch fails (rolled back), then its events run one by one, as the worker does
    with pytest.raises(ContactNotKnownYet):
        dispatch_batch(batch, service="notifications")
    assert mail.outbox == [] and not Notification.objects.exists()
    for item in batch:
        try:
            dispatch(*item, service="notifications")
        except ContactNotKnownYet:
            pass  # retried later

    # then each welcome was mailed once
    assert sorted(m.to[0] for m in mail.outbox) == ["u1@example.com", "u2@example.com", "u3@example.com"]
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_what_a_crash_left_unsent_is_mailed_once_by_the_sweep() -> None:
    # given a notification committed but never mailed (its process died before the mail left)
    dispatch(*sign_up(1), service="notifications")
    mail.outbox.clear()
    Notification.objects.update(status="pending", sent_at=None)
    assert services.deliver_pending() == 0  # the committing process's own attempt comes first

    # when the sweep finds it older than a sender's hold
    Notification.objects.update(created_at=timezone.now() - timedelta(minutes=1))

    # then it is mailed, once, however often the sweep runs
    assert services.deliver_pending() == 1
    assert services.deliver_pending() == 0
    assert [m.to for m in mail.outbox] == [["u1@example.com"]]
    assert Notification.objects.get().status == "sent"


def test_a_notification_another_sender_holds_is_left_to_it() -> None:
    dispatch(*sign_up(1), service="notifications")
    mail.outbox.clear()
    notification = Notification.objects.get()
    Notification.objects.update(status="pending", sending_until=timezone.now() + timedelta(minutes=1))

    assert services.deliver(notification.id) is False
    assert mail.outbox == []
