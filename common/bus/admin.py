"""The bus in every service's admin: the outbox (pending, published, failed) and the dead letters."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from common.admin import ReadOnlyAdmin
from common.bus import outbox
from common.bus.models import DeadLetter, InboxMessage, OutboxMessage
from common.bus.ops.deadletters import DeadLetterQueue

DEAD_LETTERS_SHOWN = 500  # per page view: the page says how many there are in all


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "event_type",
        "aggregate_id",
        "status",
        "created_at",
        "published_at",
        "attempts",
        "last_error",
    )
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


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin[DeadLetter]):
    """One page: the dead letters (collected from the queue first), to replay or delete a selection."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        posted = request.method == "POST"
        if not self.has_view_permission(request) or (posted and not self.has_change_permission(request)):
            raise PermissionDenied
        dlq = DeadLetterQueue(settings.AMQP_URL, settings.SERVICE_NAME)
        if posted:
            self._act(request, dlq, request.POST.getlist("ids"), request.POST.get("action"))
            return HttpResponseRedirect(request.path)
        error = ""
        try:
            dlq.collect()
        except Exception as exc:  # noqa: BLE001 - show the broker problem on the page, and the table
            error = f"Cannot collect new dead letters from {dlq.queue} (RabbitMQ): {exc}"
        letters, total = dlq.page(limit=DEAD_LETTERS_SHOWN, collect=False)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Dead letters of {dlq.service} ({dlq.queue})",
            "opts": self.model._meta,
            "letters": letters,
            "total": total,
            "error": error,
            "can_change": self.has_change_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "bus/dead_letters.html", context)

    def _act(self, request: HttpRequest, dlq: DeadLetterQueue, ids: list[str], action: str | None) -> None:
        if not ids:
            self.message_user(request, "Select at least one dead letter.", messages.WARNING)
        elif action == "replay":
            done = f"Replayed {len(dlq.replay(ids))} dead letter(s) to {dlq.service}.events."
            self.message_user(request, done, messages.SUCCESS)
        elif action == "purge":
            self.message_user(request, f"Deleted {dlq.purge(ids)} dead letter(s).", messages.SUCCESS)
        else:
            self.message_user(request, f"Unknown action {action!r}.", messages.ERROR)


@admin.register(InboxMessage)
class InboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "event_type", "handled_at")
    list_filter = ("event_type", "handled_at")
    search_fields = ("=event_id",)
    ordering = ("-handled_at",)
    show_full_result_count = False
