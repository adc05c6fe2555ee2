"""Nothing is mailed to a user once notifications has written their tombstone: the sender holds the
contact's row from its check to its mark, so a deletion handled meanwhile waits for a mail under
way, and a mail whose sender comes while a deletion is being written waits and is withheld."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core import mail
from django.core.mail import send_mail as django_send_mail
from django.db import transaction

from notifications_svc.notifications import services
from notifications_svc.notifications.models import Contact, Notification
from tests.support.concurrency import in_own_connection, waiting_on_a_lock
from tests.support.polling import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def recorded() -> tuple[uuid.UUID, Notification]:
    user = uuid.uuid4()
    contact = services.apply_contact(user_id=user, version=1, email="d@example.com", first_name="D")
    assert contact is not None
    notification = services.notify(
        contact=contact,
        kind=Notification.Kind.WELCOME,
        event_id=uuid.uuid4(),
        subject="Welcome aboard",
        body="hello",
    )
    return user, notification


def delete(user: uuid.UUID) -> None:
    services.apply_contact(user_id=user, version=2, deleted=True)


def test_a_deletion_handled_while_a_mail_is_sent_waits_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    user, notification = recorded()
    # given a sender in the middle of sending (the mail server has not answered yet)
    sending, answer = threading.Event(), threading.Event()

    def slow_send_mail(*args: Any, **kwargs: Any) -> Any:
        sending.set()
        assert answer.wait(30), "the test never let the mail server answer"
        return django_send_mail(*args, **kwargs)

    monkeypatch.setattr("notifications_svc.notifications.services.send_mail", slow_send_mail)
    with ThreadPoolExecutor(max_workers=2) as pool:
        delivering = pool.submit(in_own_connection(lambda: services.deliver(notification.id)))
        assert sending.wait(30)
        # when the user's deletion is handled meanwhile
        deleting = pool.submit(in_own_connection(lambda: delete(user)))
        wait_for(lambda: deleting.done() or waiting_on_a_lock(), what="the deletion to finish or to wait")
        deletion_waited = not deleting.done()
        answer.set()
        assert delivering.result(timeout=30) is True
        deleting.result(timeout=30)

    # then the deletion waited, and its tombstone is later than the mail
    assert deletion_waited, "the deletion did not wait for the mail being sent"
    sent = Notification.objects.get(id=notification.id)
    tombstone = Contact.objects.get(user_id=user).deleted_at
    assert sent.status == Notification.Status.SENT and len(mail.outbox) == 1
    assert sent.sent_at is not None and tombstone is not None and sent.sent_at < tombstone


def test_a_mail_whose_user_is_being_deleted_waits_and_is_withheld() -> None:
    user, notification = recorded()
    # given a deletion written but not committed yet
    written, commit = threading.Event(), threading.Event()

    def deletion() -> None:
        with transaction.atomic():
            delete(user)
            written.set()
            assert commit.wait(30), "the test never let the deletion commit"

    with ThreadPoolExecutor(max_workers=2) as pool:
        deleting = pool.submit(in_own_connection(deletion))
        assert written.wait(30)
        # when the sender comes to the notification meanwhile
        delivering = pool.submit(in_own_connection(lambda: services.deliver(notification.id)))
        wait_for(lambda: delivering.done() or waiting_on_a_lock(), what="the sender to finish or to wait")
        sender_waited = not delivering.done()
        commit.set()
        deleting.result(timeout=30)
        assert delivering.result(timeout=30) is False

    # then it waited for the deletion, and withheld the mail
    assert sender_waited, "the sender did not wait for the deletion being written"
    assert Notification.objects.get(id=notification.id).status == Notification.Status.WITHHELD
    assert mail.outbox == []
