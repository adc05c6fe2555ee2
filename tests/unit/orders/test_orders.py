"""Orders through the HTTP interface, with the customer replica fed by the handler directly."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from rest_framework.test import APIClient

from common.contracts import Envelope, UserCreated
from orders_svc.orders.handlers import on_user_created
from orders_svc.orders.models import Customer, Order
from tests.support.tokens import access_token

pytestmark = pytest.mark.django_db

ITEMS = [
    {"sku": "SKU-1", "quantity": 2, "unit_price": "9.99"},
    {"sku": "SKU-2", "quantity": 1, "unit_price": "0.01"},
]


def known_customer(email: str = "ada@example.com") -> uuid.UUID:
    event = UserCreated(user_id=uuid.uuid4(), email=email, first_name="Ada", last_name="L")
    envelope = Envelope.wrap(event, producer="users", aggregate_id=str(event.user_id), aggregate_version=1)
    on_user_created(event, envelope)
    return event.user_id


def client_for(user_id: uuid.UUID) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user_id)}")
    return client


def test_user_created_makes_a_customer_once() -> None:
    event = UserCreated(user_id=uuid.uuid4(), email="ada@example.com", first_name="Ada", last_name="L")
    envelope = Envelope.wrap(event, producer="users", aggregate_id=str(event.user_id), aggregate_version=1)
    on_user_created(event, envelope)
    on_user_created(event, envelope)  # redelivered
    assert list(Customer.objects.values_list("id", "email", "version")) == [
        (event.user_id, "ada@example.com", 1)
    ]


def test_a_known_customer_places_an_order_with_an_exact_total() -> None:
    customer = known_customer()

    response = client_for(customer).post("/api/orders/", {"items": ITEMS}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert Decimal(body["total"]) == Decimal("19.99")
    assert body["status"] == "placed"
    assert [i["sku"] for i in body["items"]] == ["SKU-1", "SKU-2"]
    order = Order.objects.get(id=body["id"])
    assert order.customer_id == customer and order.total == Decimal("19.99")


def test_an_unknown_customer_gets_a_409_that_says_so() -> None:
    response = client_for(uuid.uuid4()).post("/api/orders/", {"items": ITEMS}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "customer_unknown"
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([], "items"),
        ("nope", "items"),
        ([{"sku": "A", "quantity": 0, "unit_price": "1.00"}], "quantity"),
        ([{"sku": "A", "quantity": 1, "unit_price": "1.001"}], "unit_price"),
        ([{"sku": "A", "quantity": 1, "unit_price": "-1.00"}], "unit_price"),
        ([{"sku": "A", "quantity": 1, "unit_price": "abc"}], "unit_price"),
        ([{"sku": "", "quantity": 1, "unit_price": "1.00"}], "sku"),
        ([{"sku": "A B", "quantity": 1, "unit_price": "1.00"}], "sku"),
        ([{"quantity": 1, "unit_price": "1.00"}], "sku"),
        ([{"sku": "A", "quantity": 1, "unit_price": "1.00"}] * 101, "items"),
        ([{"sku": "A", "quantity": 1, "unit_price": 9.99}], "unit_price"),  # money is a string
        ([{"sku": 7, "quantity": 1, "unit_price": "1.00"}], "sku"),
        ([{"sku": "A", "quantity": 10000, "unit_price": "9999999999.99"}] * 2, "exceeds"),
    ],
)
def test_bad_items_are_a_400_naming_the_field(items: Any, field: str) -> None:
    customer = known_customer()
    response = client_for(customer).post("/api/orders/", {"items": items}, format="json")
    assert response.status_code == 400
    assert field in str(response.json())
    assert not Order.objects.exists()


def test_owner_total_and_status_cannot_be_set_by_the_client() -> None:
    customer, other = known_customer(), known_customer("other@example.com")
    response = client_for(customer).post(
        "/api/orders/",
        {"items": ITEMS, "total": "0.01", "status": "cancelled", "customer": str(other), "id": str(other)},
        format="json",
    )
    assert response.status_code == 201
    order = Order.objects.get()
    assert (order.customer_id, order.total, order.status) == (customer, Decimal("19.99"), "placed")
    assert order.id != other


def test_callers_see_only_their_own_orders() -> None:
    alice, bob = known_customer(), known_customer("bob@example.com")
    placed = client_for(alice).post("/api/orders/", {"items": ITEMS}, format="json").json()

    assert client_for(bob).get(f"/api/orders/{placed['id']}/").status_code == 404
    assert client_for(bob).get("/api/orders/").json()["results"] == []
    assert [o["id"] for o in client_for(alice).get("/api/orders/").json()["results"]] == [placed["id"]]
    assert client_for(alice).get(f"/api/orders/{placed['id']}/").json()["id"] == placed["id"]


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic YTpi"])
def test_requests_without_a_valid_token_are_refused(header: str | None) -> None:
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/orders/").status_code == 401
    assert client.post("/api/orders/", {"items": ITEMS}, format="json").status_code == 401


def test_a_token_signed_with_another_key_is_refused() -> None:
    customer = known_customer()
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {
            "user_id": str(customer),
            "token_type": "access",
            "exp": 4102444800,
            "iss": "users",
            "aud": "suite",
            "jti": "x",
        },
        other_key,
        algorithm="RS256",
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert client.get("/api/orders/").status_code == 401


def test_a_version_implausibly_far_ahead_is_refused_and_leaves_the_replica_as_it_was() -> None:
    """A forged user.updated with aggregate_version 2147483647 froze the replica for good."""
    from common.replicas import VersionTooFarAhead
    from orders_svc.orders import services

    customer = known_customer()
    with pytest.raises(VersionTooFarAhead, match="more than 1000 ahead of version 1"):
        services.apply_customer(user_id=customer, version=2_147_483_647, email="eve@example.com")
    assert Customer.objects.get(id=customer).version == 1
    assert services.apply_customer(user_id=customer, version=2, email="new@example.com") is not None
