from django.urls import path

from notifications_svc.notifications import apis

urlpatterns = [
    path("notifications/", apis.NotificationListApi.as_view(), name="notifications"),
]
