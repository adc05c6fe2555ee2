from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from common.contracts.types import MAX_TOTAL
from common.fields import BoundedListField, MoneyField, StrictIntegerField, StrictRegexField
from orders_svc.orders.models import Order, OrderLine

MAX_LINES = 100


class LineInput(serializers.Serializer[None]):
    sku = StrictRegexField(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)
    quantity = StrictIntegerField(min_value=1, max_value=10_000)
    unit_price = MoneyField()


class PlaceOrderInput(serializers.Serializer[None]):
    items = BoundedListField(child=LineInput(), allow_empty=False, min_length=1, max_length=MAX_LINES)

    def validate_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        total = sum((i["unit_price"] * i["quantity"] for i in items), start=Decimal("0"))
        if total > MAX_TOTAL:
            raise serializers.ValidationError(f"The order total {total} exceeds {MAX_TOTAL}.")
        return items


class LineOutput(serializers.ModelSerializer[OrderLine]):
    class Meta:
        model = OrderLine
        fields = ("sku", "quantity", "unit_price")
        read_only_fields = fields


class OrderOutput(serializers.ModelSerializer[Order]):
    items = LineOutput(source="lines", many=True, read_only=True)

    class Meta:
        model = Order
        fields = ("id", "status", "total", "currency", "items", "created_at", "updated_at", "cancelled_at")
        read_only_fields = fields
