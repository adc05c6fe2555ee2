from __future__ import annotations

from rest_framework import serializers

from notifications_svc.notifications.models import Notification


class NotificationOutput(serializers.ModelSerializer[Notification]):
    class Meta:
        model = Notification
        fields = ("id", "kind", "status", "recipient", "subject", "created_at", "sent_at")
        read_only_fields = fields
