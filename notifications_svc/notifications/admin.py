from django.contrib import admin

from common.admin import ReadOnlyAdmin
from notifications_svc.notifications.models import Contact, Notification


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    # The key first: the fields inherited from Replica would otherwise lead the page.
    fields = ("user_id", "email", "first_name", "version", "deleted_at")
    list_display = ("user_id", "email", "first_name", "version", "deleted_at", "updated_at")
    list_filter = (("deleted_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("=user_id", "email")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "status", "recipient", "subject", "user_id")
    list_filter = ("kind", "status", "created_at")
    search_fields = ("recipient", "=user_id", "=event_id", "subject")
