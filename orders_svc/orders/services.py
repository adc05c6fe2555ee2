"""Writes of the orders service. Each runs in one transaction with the events it publishes."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TypedDict
from uuid import UUID

from django.db import transaction
from rest_framework import status

from common.api import ApplicationError
from common.bus.publisher import publish
from common.contracts import OrderLine as OrderLineContract
from common.contracts import OrderPlaced
from orders_svc.orders.models import Customer, Order, OrderLine


class LineInput(TypedDict):
    sku: str
    quantity: int
    unit_price: Decimal


class CustomerUnknown(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    code = "customer_unknown"


def place_order(*, customer_id: UUID, items: Sequence[LineInput]) -> Order:
    with transaction.atomic():
        customer = Customer.objects.filter(id=customer_id).first()
        if customer is None:
            raise CustomerUnknown(
                "The orders service does not know this customer yet: the sign-up event has not "
                "arrived. Retry in a moment."
            )
        total = sum((line["unit_price"] * line["quantity"] for line in items), start=Decimal("0"))
        order = Order.objects.create(customer=customer, total=total)
        OrderLine.objects.bulk_create(
            OrderLine(order=order, position=i, **line) for i, line in enumerate(items)
        )
        publish(
            OrderPlaced(
                order_id=order.id,
                customer_id=customer.id,
                lines=tuple(OrderLineContract(**line) for line in items),
                total=total,
            ),
            aggregate_id=str(order.id),
            aggregate_version=order.version,
        )
    return order
