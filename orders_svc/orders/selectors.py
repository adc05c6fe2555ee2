"""Reads of the orders service; every query is scoped to one customer."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from orders_svc.orders.models import Order


def orders_of(*, customer_id: UUID) -> QuerySet[Order]:
    return Order.objects.filter(customer_id=customer_id).prefetch_related("lines")
