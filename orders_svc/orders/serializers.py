from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from orders_svc.orders.models import Order, OrderLine

MAX_LINES = 100


class LineInput(serializers.Serializer[None]):
    sku = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=10_000)
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"))


class PlaceOrderInput(serializers.Serializer[None]):
    items = LineInput(many=True, allow_empty=False, max_length=MAX_LINES)


class LineOutput(serializers.ModelSerializer[OrderLine]):
    class Meta:
        model = OrderLine
        fields = ("sku", "quantity", "unit_price")
        read_only_fields = fields


class OrderOutput(serializers.ModelSerializer[Order]):
    items = LineOutput(source="lines", many=True, read_only=True)

    class Meta:
        model = Order
        fields = ("id", "status", "total", "items", "created_at", "updated_at", "cancelled_at")
        read_only_fields = fields
