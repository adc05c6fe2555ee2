"""Tables the bus keeps in each service's own database."""

from __future__ import annotations

import json

from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxMessage(models.Model):
    """An event committed with the change it announces. The partial indexes keep the relay's reads,
    the per-aggregate ordering check and pruning cheap however many published rows the table holds."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PUBLISHED = "published"
        FAILED = "failed"

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True)
    event_type = models.CharField(max_length=100)
    aggregate_id = models.CharField(max_length=200)
    correlation_id = models.UUIDField()
    causation_id = models.UUIDField(null=True, blank=True)
    envelope = models.TextField(help_text="The envelope as JSON, sent as is.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A relay is publishing it; others leave it alone until then."
    )
    claimed_by = models.CharField(
        max_length=64,
        blank=True,
        db_default="",  # rows written outside the ORM (the benchmark's, an operator's) hold no lease
        help_text="Who holds the lease: only they release or mark the row.",
    )

    class Meta:
        verbose_name = "outbox message"
        indexes = [
            models.Index(fields=["id"], name="outbox_pending", condition=Q(status="pending")),
            models.Index(
                fields=["aggregate_id", "id"],
                name="outbox_pending_aggregate",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["published_at"], name="outbox_published", condition=Q(status="published")),
            models.Index(fields=["id"], name="outbox_failed", condition=Q(status="failed")),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.status})"


class InboxMessage(models.Model):
    """An event this service has handled: recorded in the handler's own transaction, so a second
    delivery of the same event id finds it and changes nothing."""

    event_id = models.UUIDField(primary_key=True)
    event_type = models.CharField(max_length=100)
    handled_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "inbox message"

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class DeadLetter(models.Model):
    """A parked message, moved here from `<svc>.events.dlq`: listing it is a query, not a read of the
    queue that takes every message unacked, hides it from other readers and raises its delivery count."""

    id = models.CharField(max_length=64, primary_key=True, help_text="The dead-letter id.")
    parked_at = models.DateTimeField(default=timezone.now, db_index=True)
    event_type = models.CharField(max_length=200, blank=True)
    event_id = models.CharField(max_length=200, blank=True, db_index=True)
    kind = models.CharField(max_length=64)
    reason = models.TextField(blank=True)
    exception_type = models.CharField(max_length=300, blank=True)
    traceback = models.TextField(blank=True)
    attempts = models.IntegerField(null=True, blank=True)
    service = models.CharField(max_length=64, blank=True)
    first_failure_at = models.CharField(max_length=64, blank=True)
    last_failure_at = models.CharField(max_length=64, blank=True)
    routing_key = models.CharField(max_length=300, blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    content_encoding = models.CharField(max_length=100, blank=True)
    body = models.BinaryField()
    headers = models.JSONField(default=dict, help_text="The message's headers, as parked.")
    properties = models.JSONField(default=dict, help_text="Its AMQP properties but the headers.")

    class Meta:
        verbose_name = "dead letter"
        default_permissions = ("view", "change")

    def __str__(self) -> str:
        return f"dead letter {self.id} ({self.event_type or 'no type'})"

    @property
    def body_text(self) -> str:
        body = bytes(self.body)
        try:
            return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            return repr(body[:2000])
