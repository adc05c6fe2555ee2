"""Mail leaves only after the handler's transaction commits, sent by the relay's housekeeping: a
batch that rolls back (one event in it fails) records nothing, and its events, run again one by one,
are mailed once each; a notification another sender holds is left to it; a sender that died leaves
it to the next sweep once its hold has run out."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from common.bus.consume.handling import Parsed, handle_batch, parse
from common.contracts import Contract, Envelope, OrderLine, OrderPlaced, UserCreated, UserDeleted
from notifications_svc.notifications import services
from notifications_svc.notifications.handlers import registry
from notifications_svc.notifications.models import Notification
from notifications_svc.notifications.services import ContactNotKnownYet

pytestmark = pytest.mark.django_db(transaction=True)


def parsed(event: Contract, aggregate: str, version: int = 1) -> Parsed:
    envelope = Envelope.wrap(
        event, producer=type(event).producer, aggregate_id=aggregate, aggregate_version=version
    )
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
        handle_batch(batch, service="notifications")
    assert services.deliver_pending() == 0 and not Notification.objects.exists()
    for item in batch:
        try:
            handle_batch([item], service="notifications")
        except ContactNotKnownYet:
            pass  # retried later
    assert mail.outbox == []  # nothing before the sweep after the commits
    assert services.deliver_pending() == 3
    assert services.deliver_pending() == 0

    # then each welcome was mailed once
    assert sorted(m.to[0] for m in mail.outbox) == ["u1@example.com", "u2@example.com", "u3@example.com"]
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_what_a_dead_sender_held_is_mailed_once_its_hold_runs_out() -> None:
    # given a notification whose sender died holding it (mid-way through mailing it)
    handle_batch([sign_up(1)], service="notifications")
    Notification.objects.update(sending_until=timezone.now() + timedelta(seconds=30))
    assert services.deliver_pending() == 0

    # when its hold has run out
    Notification.objects.update(sending_until=timezone.now() - timedelta(seconds=1))

    # then it is mailed, once, however often the sweep runs
    assert services.deliver_pending() == 1
    assert services.deliver_pending() == 0
    assert [m.to for m in mail.outbox] == [["u1@example.com"]]
    assert Notification.objects.get().status == "sent"


def test_a_notification_another_sender_holds_is_left_to_it() -> None:
    handle_batch([sign_up(1)], service="notifications")
    notification = Notification.objects.get()
    Notification.objects.update(sending_until=timezone.now() + timedelta(minutes=1))

    assert services.deliver(notification.id) is False
    assert mail.outbox == []


def test_a_notification_recorded_before_its_user_was_deleted_is_never_mailed() -> None:
    # given a welcome recorded, and then the user deleted before the sweep mailed it
    user = sign_up(1)
    handle_batch([user], service="notifications")
    deletion = UserDeleted(user_id=user[2].user_id)  # type: ignore[attr-defined]
    handle_batch([parsed(deletion, str(deletion.user_id), version=2)], service="notifications")

    # then the sweep withholds it
    assert services.deliver_pending() == 0
    assert mail.outbox == []
    assert Notification.objects.get().status == "withheld"
