"""The outbox in every service's admin: pending, published and failed rows, with filters."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import ReadOnlyAdmin
from common.bus import outbox
from common.bus.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_type", "aggregate_id", "status", "created_at", "published_at",
                    "attempts", "last_error")
    list_filter = ("status", "event_type", "created_at")
    search_fields = ("=event_id", "=aggregate_id", "=correlation_id")
    ordering = ("-id",)
    show_full_result_count = False  # no COUNT(*) over millions of published rows per page view
    actions = ("publish_again",)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("bus.change_outboxmessage")

    @admin.action(description="Publish the selected failed rows again", permissions=["retry"])
    def publish_again(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        ids = list(queryset.filter(status=OutboxMessage.Status.FAILED).values_list("id", flat=True))
        count = outbox.retry_failed(ids)
        self.message_user(request, f"{count} failed row(s) back to pending.", messages.SUCCESS)
