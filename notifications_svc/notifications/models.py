from __future__ import annotations

import uuid

from django.db import models

from common.replicas import Replica


class Contact(Replica):
    """Replica of a user's contact details, built from user events only; `version` is the last user
    version applied. A deleted user stays as a tombstone (`deleted_at`, details cleared): nothing is
    ever sent to it, and late events cannot revive it."""

    user_id = models.UUIDField(primary_key=True, help_text="The user's id in the users service.")
    email = models.EmailField(blank=True)
    first_name = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return self.email


class OrderProgress(models.Model):
    """The last version of an order whose event was notified: an order's events are mailed in
    order ("placed" before "cancelled"), however the bus delivers them."""

    order_id = models.UUIDField(primary_key=True)
    version = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.order_id} v{self.version}"


class Notification(models.Model):
    class Kind(models.TextChoices):
        WELCOME = "welcome"
        ORDER_PLACED = "order_placed"
        ORDER_CANCELLED = "order_cancelled"

    class Status(models.TextChoices):
        PENDING = "pending"  # recorded with the event; mailed once its transaction commits
        SENT = "sent"
        WITHHELD = "withheld"  # its user was deleted before it could be mailed

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices)
    recipient = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    # One notification per event: a redelivered event finds its notification and sends nothing.
    event_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # While a sender mails it: others leave it alone until then (the database's clock).
    sending_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["user_id", "-created_at"], name="notification_user_recent"),
            models.Index(
                fields=["created_at"], name="notification_pending", condition=models.Q(status="pending")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient}"
