from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import generics

from common.auth.caller import caller_id
from notifications_svc.notifications import selectors
from notifications_svc.notifications.models import Notification
from notifications_svc.notifications.serializers import NotificationOutput


class NotificationListApi(generics.ListAPIView[Notification]):
    serializer_class = NotificationOutput

    def get_queryset(self) -> QuerySet[Notification]:
        return selectors.notifications_of(user_id=caller_id(self.request))
