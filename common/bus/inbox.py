"""The consumer side of G2: an event id is applied at most once per service."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from common.bus.models import InboxMessage
from common.contracts.envelope import Envelope


def first_delivery(envelope: Envelope) -> bool:
    """Record the event in the caller's transaction; False when it was already handled.

    A concurrent delivery of the same id waits on the unique key until the first commits, then sees
    the conflict; if the first rolls back, the second goes ahead.
    """
    try:
        with transaction.atomic():
            InboxMessage.objects.create(event_id=envelope.id, event_type=envelope.type)
    except IntegrityError:
        return False
    return True


def prune(*, older_than: timedelta, chunk: int = 5000) -> int:
    cutoff = timezone.now() - older_than
    total = 0
    while True:
        ids = list(
            InboxMessage.objects.filter(handled_at__lt=cutoff).values_list("event_id", flat=True)[:chunk]
        )
        if not ids:
            return total
        total += InboxMessage.objects.filter(event_id__in=ids).delete()[0]
