"""Cancellation, the customer replica under out-of-order events, and the deletion chain (handlers
run directly; what orders publishes is read from its outbox)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from common.api import Pagination
from common.contracts import Contract, Envelope, UserCreated, UserDeleted, UserUpdated
from orders_svc.orders.handlers import on_user_created, on_user_deleted, on_user_updated
from orders_svc.orders.models import Customer, Order
from tests.support.outbox import published
from tests.support.tokens import access_token

pytestmark = pytest.mark.django_db
ITEMS = [{"sku": "SKU-1", "quantity": 1, "unit_price": "5.00"}]


def envelope(event: Contract, user_id: uuid.UUID, version: int) -> Envelope:
    return Envelope.wrap(event, producer="users", aggregate_id=str(user_id), aggregate_version=version)


def created(user_id: uuid.UUID, email: str = "ada@example.com") -> None:
    event = UserCreated(user_id=user_id, email=email, first_name="Ada", last_name="L")
    on_user_created(event, envelope(event, user_id, 1))


def updated(user_id: uuid.UUID, version: int, email: str) -> None:
    event = UserUpdated(user_id=user_id, email=email, first_name="Ada", last_name="L", changed=("email",))
    on_user_updated(event, envelope(event, user_id, version))


def deleted(user_id: uuid.UUID, version: int) -> None:
    event = UserDeleted(user_id=user_id)
    on_user_deleted(event, envelope(event, user_id, version))


def client_for(user_id: uuid.UUID) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user_id)}")
    return client


def place(user_id: uuid.UUID) -> dict[str, Any]:
    response = client_for(user_id).post("/api/orders/", {"items": ITEMS}, format="json")
    assert response.status_code == 201, response.json()
    return dict(response.json())


# --- replica: out of order -------------------------------------------------------------------------
def test_an_older_update_arriving_late_is_ignored() -> None:
    user = uuid.uuid4()
    created(user)
    updated(user, 3, "v3@example.com")
    updated(user, 2, "v2@example.com")  # late
    assert Customer.objects.values_list("email", "version").get(id=user) == ("v3@example.com", 3)


def test_an_update_before_the_creation_makes_the_customer_and_the_creation_is_ignored() -> None:
    user = uuid.uuid4()
    updated(user, 2, "v2@example.com")
    created(user, "v1@example.com")
    assert Customer.objects.values_list("email", "version").get(id=user) == ("v2@example.com", 2)


def test_a_deletion_leaves_a_tombstone_that_late_events_cannot_revive() -> None:
    user = uuid.uuid4()
    created(user)
    deleted(user, 3)
    updated(user, 2, "late@example.com")
    created(user)
    customer = Customer.objects.get(id=user)
    assert customer.deleted_at is not None and customer.email == "" and customer.version == 3


def test_a_deletion_before_the_creation_still_wins() -> None:
    user = uuid.uuid4()
    deleted(user, 2)
    created(user)
    assert Customer.objects.get(id=user).deleted_at is not None


# --- cancellation --------------------------------------------------------------------------------
def test_the_owner_cancels_a_placed_order_once() -> None:
    user = uuid.uuid4()
    created(user)
    order = place(user)

    response = client_for(user).post(f"/api/orders/{order['id']}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled" and response.json()["cancelled_at"]
    [cancelled] = published("order.cancelled")
    assert cancelled["data"] == {"order_id": order["id"], "customer_id": str(user), "reason": "customer"}
    assert cancelled["aggregate_version"] == 2
    again = client_for(user).post(f"/api/orders/{order['id']}/cancel/")
    assert again.status_code == 409 and again.json()["code"] == "not_cancellable"
    assert len(published("order.cancelled")) == 1


def test_deleting_the_user_cancels_their_open_orders_only() -> None:
    user = uuid.uuid4()
    created(user)
    kept, open_one = place(user), place(user)
    client_for(user).post(f"/api/orders/{kept['id']}/cancel/")

    deleted(user, 2)

    assert set(Order.objects.values_list("status", flat=True)) == {"cancelled"}
    reasons = {e["data"]["order_id"]: e["data"]["reason"] for e in published("order.cancelled")}
    assert reasons == {kept["id"]: "customer", open_one["id"]: "account_deleted"}


def test_a_deleted_customer_cannot_order() -> None:
    user = uuid.uuid4()
    created(user)
    deleted(user, 2)
    response = client_for(user).post("/api/orders/", {"items": ITEMS}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "customer_deleted"


# --- authorization matrix ------------------------------------------------------------------------
def test_another_customer_can_neither_read_list_nor_cancel_an_order() -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    created(alice, "alice@example.com")
    created(bob, "bob@example.com")
    order = place(alice)

    assert client_for(bob).get(f"/api/orders/{order['id']}/").status_code == 404
    assert client_for(bob).post(f"/api/orders/{order['id']}/cancel/").status_code == 404
    assert client_for(bob).get("/api/orders/").json()["results"] == []
    assert Order.objects.get(id=order["id"]).status == "placed"
    assert published("order.cancelled") == []


def test_unknown_order_ids_are_404_not_500() -> None:
    user = uuid.uuid4()
    created(user)
    assert client_for(user).post(f"/api/orders/{uuid.uuid4()}/cancel/").status_code == 404
    assert client_for(user).get("/api/orders/not-a-uuid/").status_code == 404


def test_lists_are_paginated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Pagination, "page_size", 2)
    user = uuid.uuid4()
    created(user)
    for _ in range(3):
        place(user)
    first = client_for(user).get("/api/orders/?page_size=1000").json()  # the client cannot widen it
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"]
    second = client_for(user).get("/api/orders/?page=2").json()
    assert len(second["results"]) == 1 and second["next"] is None
    assert client_for(user).get("/api/orders/?page=3").status_code == 404
