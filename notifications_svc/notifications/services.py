"""Writes of the notifications service: keep contacts, record notifications and mail them after the
commit."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.core.mail import send_mail
from django.db import DatabaseError, InterfaceError, connection, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from common.replicas import apply_version, in_sequence
from notifications_svc.notifications.models import Contact, Notification, OrderProgress

log = logging.getLogger(__name__)
# How long a sender may take to mail one notification before another sender takes it over.
SENDING_HOLD = timedelta(seconds=30)
# A mailed notification is marked on new connections until this long before its hold ends.
MARK_MARGIN = 5.0
MARK_RETRY_EVERY = 1.0


class ContactNotKnownYet(LookupError):
    """An event about a user arrived before any event that created the contact: try again later."""


def apply_contact(
    *, user_id: UUID, version: int, email: str = "", first_name: str = "", deleted: bool = False
) -> Contact | None:
    values = {"email": "", "first_name": ""} if deleted else {"email": email, "first_name": first_name}
    contact = apply_version(Contact, key={"user_id": user_id}, version=version, values=values, delete=deleted)
    if deleted:
        forget(user_id)
    return contact


def forget(user_id: UUID) -> int:
    """A deleted user's notifications keep no address and no text: what was mailed stays countable
    (kind, status, when), never readable. Pending ones are withheld: nothing is mailed to a deleted
    user. Runs after the tombstone is written, in the same transaction, so a sender holding the
    contact's row finishes first (`deliver`) and one that comes later finds the tombstone."""
    Notification.objects.filter(user_id=user_id, status=Notification.Status.PENDING).update(
        status=Notification.Status.WITHHELD, sending_until=None
    )
    return (
        Notification.objects.filter(user_id=user_id)
        .exclude(recipient="", subject="", body="")
        .update(recipient="", subject="", body="")
    )


def next_order_event(*, order_id: UUID, version: int) -> bool:
    """Whether this order event is the next to notify (False: notified already)."""
    return in_sequence(OrderProgress, key={"order_id": order_id}, version=version)


def reachable_contact(user_id: UUID) -> Contact | None:
    """The contact to write to, or None if the user was deleted (never write to a deleted user)."""
    contact = Contact.objects.filter(user_id=user_id).first()
    if contact is None:
        raise ContactNotKnownYet(f"no contact for user {user_id} yet")
    if contact.deleted_at is not None:
        log.info("user %s is deleted: nothing is sent", user_id)
        return None
    return contact


def notify(
    *, contact: Contact, kind: Notification.Kind, event_id: UUID, subject: str, body: str
) -> Notification:
    """Record one notification per event, to the contact's current address, in the handler's
    transaction; it is mailed after that transaction commits (`deliver_pending`), never before. A
    rollback (of a batch, say, whose events then run again one by one) leaves nothing recorded and
    nothing sent."""
    existing = Notification.objects.filter(event_id=event_id).first()
    if existing is not None:
        return existing
    notification = Notification.objects.create(
        user_id=contact.user_id,
        kind=kind,
        status=Notification.Status.PENDING,
        recipient=contact.email,
        subject=subject,
        body=body,
        event_id=event_id,
    )
    return notification


def deliver(notification_id: UUID) -> bool:
    """Mail one recorded notification, unless it was sent or another sender holds it; whether this
    call sent it. The hold is committed before the mail leaves, so a sender whose database
    connection drops after the mail server accepted it keeps it while it marks it on a new
    connection (`_mark_sent`). A sender that dies mid-way leaves it pending and it is sent once its
    hold runs out: mail is at least once, twice only if a sender dies between the mail server
    accepting it and the row being marked.

    The contact's row stays locked from the check to the mark, so a deletion handled meanwhile
    waits, and one that came first is seen: nothing is mailed once the tombstone is written."""
    unheld = Q(sending_until__isnull=True) | Q(sending_until__lt=Now())
    held_until = time.monotonic() + SENDING_HOLD.total_seconds()
    held = Notification.objects.filter(unheld, id=notification_id, status=Notification.Status.PENDING).update(
        sending_until=Now() + SENDING_HOLD
    )
    if not held:
        return False
    sent_at = None
    try:
        with transaction.atomic():
            notification = Notification.objects.get(id=notification_id)
            contact = Contact.objects.select_for_update().filter(user_id=notification.user_id).first()
            if contact is None or contact.deleted_at is not None:
                # the user was deleted since it was recorded: nothing is ever sent to a deleted user
                Notification.objects.filter(id=notification_id).update(
                    status=Notification.Status.WITHHELD, sending_until=None
                )
                return False
            try:
                send_mail(
                    notification.subject,
                    notification.body,
                    settings.DEFAULT_FROM_EMAIL,
                    [notification.recipient],
                    fail_silently=False,
                )
            except Exception:  # the mail server is away: the hold runs out and a later sweep tries again
                log.exception("could not mail notification %s; it stays pending", notification_id)
                return False
            sent_at = timezone.now()
            _record_sent(notification_id, sent_at)
    except (DatabaseError, InterfaceError):
        if sent_at is None:
            raise  # nothing left: the hold runs out and a later sweep sends it
        return _mark_sent(notification_id, sent_at, until=held_until - MARK_MARGIN)
    return True


def _record_sent(notification_id: UUID, sent_at: datetime) -> None:
    Notification.objects.filter(id=notification_id).update(
        status=Notification.Status.SENT, sent_at=sent_at, sending_until=None
    )


def _mark_sent(notification_id: UUID, sent_at: datetime, *, until: float) -> bool:
    """Mark a mail the mail server accepted, on new connections, while this sender's hold lasts:
    the database went away between the two, and a sweep after the hold would mail it again."""
    while True:
        connection.close()  # the one that failed is not used again
        try:
            _record_sent(notification_id, sent_at)
            return True
        except (DatabaseError, InterfaceError):
            if time.monotonic() >= until:
                log.error(
                    "notification %s was mailed but could not be marked: it may be mailed again",
                    notification_id,
                )
                return False
            log.warning("notification %s was mailed; marking it once the database answers", notification_id)
            time.sleep(MARK_RETRY_EVERY)


def deliver_pending(*, limit: int = 200) -> int:
    """Mail the committed notifications, oldest first; how many. Run by the service's relay as its
    housekeeping (`BUS_HOUSEKEEPING`, every second): a long-lived process, so a worker's pool
    process dying mid-way through its events never interrupts a mail being sent."""
    waiting = Notification.objects.filter(
        Q(sending_until__isnull=True) | Q(sending_until__lt=Now()),
        status=Notification.Status.PENDING,
    ).order_by("created_at")
    return sum(deliver(notification_id) for notification_id in waiting.values_list("id", flat=True)[:limit])
