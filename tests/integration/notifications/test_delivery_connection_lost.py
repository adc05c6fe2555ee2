"""A mail the mail server accepted is mailed once, even when the sender's database connection is
dropped before the notification is marked sent (PostgreSQL restarted, say): the hold on it was
committed before the mail left, so no other sweep takes it meanwhile, and the sender marks it on a
new connection once the database answers again."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from django.core import mail
from django.core.mail import send_mail as django_send_mail
from django.db import connection

from notifications_svc.notifications import services
from notifications_svc.notifications.models import Notification
from tests.support import databases

pytestmark = pytest.mark.django_db(transaction=True)


def recorded() -> Notification:
    user = uuid.uuid4()
    contact = services.apply_contact(user_id=user, version=1, email="c@example.com", first_name="C")
    assert contact is not None
    return services.notify(
        contact=contact, kind=Notification.Kind.WELCOME, event_id=uuid.uuid4(), subject="Hi", body="hello"
    )


def test_a_mail_accepted_before_the_connection_drops_is_marked_sent_and_not_mailed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notification = recorded()

    # given a mail server that accepts the mail, and a database that drops the sender's connection then
    def send_mail_then_drop_the_connection(*args: Any, **kwargs: Any) -> Any:
        sent = django_send_mail(*args, **kwargs)
        pid = connection.connection.info.backend_pid
        with psycopg.connect(databases.server_url(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return sent

    monkeypatch.setattr(
        "notifications_svc.notifications.services.send_mail", send_mail_then_drop_the_connection
    )
    # when it is delivered, and the next sweeps come
    delivered = services.deliver(notification.id)
    monkeypatch.undo()
    again = services.deliver_pending()

    # then it was mailed once and is marked sent
    assert delivered is True
    assert len(mail.outbox) == 1 and again == 0
    marked = Notification.objects.get(id=notification.id)
    assert marked.status == Notification.Status.SENT and marked.sent_at is not None
