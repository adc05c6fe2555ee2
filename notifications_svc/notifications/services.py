"""Writes of the notifications service: keep contacts, record and send notifications."""

from __future__ import annotations

import logging
from uuid import UUID

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from common.replicas import apply_version
from notifications_svc.notifications.models import Contact, Notification

log = logging.getLogger(__name__)


class ContactNotKnownYet(LookupError):
    """An event about a user arrived before any event that created the contact: try again later."""


def apply_contact(
    *, user_id: UUID, version: int, email: str = "", first_name: str = "", deleted: bool = False
) -> Contact | None:
    values = {"email": "", "first_name": ""} if deleted else {"email": email, "first_name": first_name}
    return apply_version(Contact, key={"user_id": user_id}, version=version, values=values, delete=deleted)


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
    """Record and send one notification per event, to the contact's current address; call inside
    the handler's transaction.

    The mail goes out before the commit: if the commit then fails, the redelivered event sends it
    again (at-least-once email), which beats a recorded notification that was never sent.
    """
    existing = Notification.objects.filter(event_id=event_id).first()
    if existing is not None:
        return existing
    notification = Notification.objects.create(
        user_id=contact.user_id,
        kind=kind,
        status=Notification.Status.SENT,
        recipient=contact.email,
        subject=subject,
        body=body,
        event_id=event_id,
    )
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [contact.email], fail_silently=False)
    notification.sent_at = timezone.now()
    notification.save(update_fields=["sent_at"])
    return notification
