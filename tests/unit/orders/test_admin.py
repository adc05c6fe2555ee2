"""The orders admin: every registered model opens; replicas are read-only; orders are cancelled
through the service (so order.cancelled is published)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from common.contracts import Envelope, UserCreated
from orders_svc.orders.handlers import on_user_created
from orders_svc.orders.models import Customer, Order
from orders_svc.orders.services import place_order
from tests.support.admin_smoke import admin_client, assert_every_admin_page_opens
from tests.support.outbox import published

pytestmark = pytest.mark.django_db


def test_every_model_page_opens() -> None:
    opened = assert_every_admin_page_opens()
    assert "/admin/bus/outboxmessage/" in opened and "/admin/bus/deadletter/" in opened


def test_replicas_cannot_be_edited_and_orders_are_cancelled_through_the_service() -> None:
    user = uuid.uuid4()
    event = UserCreated(user_id=user, email="a@example.com", first_name="A", last_name="B")
    on_user_created(
        event, Envelope.wrap(event, producer="users", aggregate_id=str(user), aggregate_version=1)
    )
    order = place_order(customer_id=user, items=[{"sku": "A", "quantity": 1, "unit_price": Decimal("1.00")}])
    client = admin_client()

    assert (
        client.post(f"/admin/orders/customer/{user}/change/", {"email": "x@example.com"}).status_code == 403
    )
    assert Customer.objects.get(id=user).email == "a@example.com"
    client.post("/admin/orders/order/", {"action": "cancel_orders", "_selected_action": [str(order.id)]})
    assert Order.objects.get(id=order.id).status == "cancelled"
    assert [e["data"]["reason"] for e in published("order.cancelled")] == ["operator"]
