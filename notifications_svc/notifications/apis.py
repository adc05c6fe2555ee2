from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics

from common.auth.caller import caller_id
from common.openapi import errors
from notifications_svc.notifications import selectors
from notifications_svc.notifications.models import Notification
from notifications_svc.notifications.serializers import NotificationOutput


@extend_schema_view(
    get=extend_schema(
        summary="Your notifications, newest first",
        responses={200: NotificationOutput(many=True), **errors(400, 401, 404)},
    )
)
class NotificationListApi(generics.ListAPIView[Notification]):
    serializer_class = NotificationOutput

    def get_queryset(self) -> QuerySet[Notification]:
        return selectors.notifications_of(user_id=caller_id(self.request))
