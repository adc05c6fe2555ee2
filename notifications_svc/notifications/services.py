"""Writes of the notifications service: keep contacts, record and send notifications."""

from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from notifications_svc.notifications.models import Contact, Notification


class ContactNotKnownYet(LookupError):
    """An event about a user arrived before the user's own creation event: try again later."""


def remember_contact(*, user_id: UUID, email: str, first_name: str, version: int) -> Contact:
    contact, _ = Contact.objects.get_or_create(
        user_id=user_id, defaults={"email": email, "first_name": first_name, "version": version}
    )
    return contact


def contact_of(user_id: UUID) -> Contact:
    contact = Contact.objects.filter(user_id=user_id).first()
    if contact is None:
        raise ContactNotKnownYet(f"no contact for user {user_id} yet")
    return contact


def notify(
    *, contact: Contact, kind: Notification.Kind, event_id: UUID, subject: str, body: str
) -> Notification:
    """Record and send one notification per event; call inside the handler's transaction.

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
