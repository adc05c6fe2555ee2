"""Reads of the notifications service; every query is scoped to one user."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from notifications_svc.notifications.models import Notification


def notifications_of(*, user_id: UUID) -> QuerySet[Notification]:
    return Notification.objects.filter(user_id=user_id)
