"""Writes of the orders service. Each runs in one transaction with the events it publishes."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal, TypedDict
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common.bus import publish
from common.contracts import OrderCancelled, OrderPlaced
from common.contracts import OrderLine as OrderLineContract
from common.errors import Conflict, Forbidden, NotFound
from common.replicas import apply_version
from orders_svc.orders.models import Customer, Order, OrderLine

CANCEL_REASONS: dict[Order.CancelReason, Literal["customer", "account_deleted", "operator"]] = {
    Order.CancelReason.CUSTOMER: "customer",
    Order.CancelReason.ACCOUNT_DELETED: "account_deleted",
    Order.CancelReason.OPERATOR: "operator",
}


class LineInput(TypedDict):
    sku: str
    quantity: int
    unit_price: Decimal


class CustomerUnknown(Conflict):
    """The customer's sign-up event has not arrived yet: retrying later can succeed."""

    code = "customer_unknown"


class CustomerDeleted(Forbidden):
    code = "customer_deleted"


class OrderNotFound(NotFound):
    """Also raised for another customer's order: to the caller it does not exist."""


class NotCancellable(Conflict):
    code = "not_cancellable"


def apply_customer(*, user_id: UUID, version: int, email: str = "", deleted: bool = False) -> Customer | None:
    """The customer replica at `version`, if newer than what it holds (a tombstone once deleted)."""
    return apply_version(
        Customer,
        key={"id": user_id},
        version=version,
        values={"email": "" if deleted else email},
        delete=deleted,
    )


def place_order(*, customer_id: UUID, items: Sequence[LineInput]) -> Order:
    """The customer's row stays locked until the order commits: a user.deleted handled meanwhile
    waits, then cancels this order with the others; one handled first makes this a refusal."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(id=customer_id).first()
        if customer is None:
            raise CustomerUnknown(
                "The orders service does not know this customer yet: the sign-up event has not "
                "arrived. Retry in a moment."
            )
        if customer.deleted_at is not None:
            raise CustomerDeleted("This account has been deleted.")
        total = sum((line["unit_price"] * line["quantity"] for line in items), start=Decimal("0"))
        order = Order.objects.create(customer=customer, total=total, currency=settings.ORDER_CURRENCY)
        OrderLine.objects.bulk_create(
            OrderLine(order=order, position=i, **line) for i, line in enumerate(items)
        )
        publish(
            OrderPlaced(
                order_id=order.id,
                customer_id=customer.id,
                lines=tuple(OrderLineContract(**line) for line in items),
                total=total,
                currency=order.currency,
            ),
            aggregate_id=str(order.id),
            aggregate_version=order.version,
        )
    return order


def cancel_order(*, customer_id: UUID, order_id: UUID, reason: Order.CancelReason) -> Order:
    """Cancel one of the customer's orders while it is still placed; `OrderNotFound` for anyone
    else's."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(id=order_id, customer_id=customer_id).first()
        if order is None:
            raise OrderNotFound("No such order.")
        if not order.cancellable:
            raise NotCancellable(f"The order is {order.status} and can no longer be cancelled.")
        _cancel(order, reason)
    return order


def cancel_open_orders(*, customer_id: UUID, reason: Order.CancelReason) -> list[Order]:
    """Cancel every order of the customer that is still placed (e.g. their account was deleted)."""
    with transaction.atomic():
        orders = list(
            Order.objects.select_for_update().filter(customer_id=customer_id, status=Order.Status.PLACED)
        )
        for order in orders:
            _cancel(order, reason)
    return orders


def _cancel(order: Order, reason: Order.CancelReason) -> None:
    order.status = Order.Status.CANCELLED
    order.cancel_reason = reason
    order.cancelled_at = timezone.now()
    order.version += 1
    order.save(update_fields=["status", "cancel_reason", "cancelled_at", "version", "updated_at"])
    publish(
        OrderCancelled(order_id=order.id, customer_id=order.customer_id, reason=CANCEL_REASONS[reason]),
        aggregate_id=str(order.id),
        aggregate_version=order.version,
    )
