from django.contrib import admin
from django.http import HttpRequest

from common.admin import ReadOnlyAdmin
from orders_svc.orders.models import Customer, Order, OrderLine


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ("id", "email", "version", "created_at", "updated_at")
    search_fields = ("id", "email")


class OrderLineInline(admin.TabularInline[OrderLine, Order]):
    model = OrderLine
    extra = 0
    readonly_fields = ("position", "sku", "quantity", "unit_price")
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin[Order]):
    list_display = ("id", "customer", "status", "total", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("id", "customer__email", "customer__id")
    readonly_fields = ("id", "customer", "status", "total", "version", "created_at", "updated_at")
    inlines = (OrderLineInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
