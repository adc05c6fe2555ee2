from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import ReadOnlyAdmin
from common.errors import ApplicationError
from orders_svc.orders import services
from orders_svc.orders.models import Customer, Order, OrderLine


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    # The key first: the fields inherited from Replica would otherwise lead the page.
    fields = ("id", "email", "version", "deleted_at")
    list_display = ("id", "email", "version", "deleted_at", "created_at", "updated_at")
    list_filter = (("deleted_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("=id", "email")


class OrderLineInline(admin.TabularInline[OrderLine, Order]):
    model = OrderLine
    extra = 0
    readonly_fields = ("position", "sku", "quantity", "unit_price")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    """Orders change only through the services (so order.cancelled is published): the one write
    here is the "Cancel selected orders" action."""

    list_display = ("id", "customer", "status", "total", "created_at", "cancelled_at", "cancel_reason")
    list_filter = ("status", "cancel_reason", "created_at")
    search_fields = ("=id", "customer__email", "=customer__id")
    list_select_related = ("customer",)
    inlines = (OrderLineInline,)
    actions = ("cancel_orders",)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.change_order")

    @admin.action(description="Cancel selected orders", permissions=["cancel"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        cancelled = 0
        for order in queryset.filter(status=Order.Status.PLACED):
            try:
                services.cancel_order(
                    customer_id=order.customer_id, order_id=order.id, reason=Order.CancelReason.OPERATOR
                )
                cancelled += 1
            except ApplicationError as exc:
                self.message_user(request, f"{order.id}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Cancelled {cancelled} order(s).", messages.SUCCESS)
