"""The foundation story through real processes: sign-up → welcome → order → confirmation."""

from __future__ import annotations

import uuid
from decimal import Decimal

from tests.support.polling import wait_for
from tests.support.suite import Suite
from tests.support.tokens import access_token


def kinds(suite: Suite, token: str) -> list[str]:
    status, body = suite.call("GET", "notifications", "/api/notifications/", token=token)
    assert status == 200, (status, body)
    return [n["kind"] for n in body["results"]]


def test_sign_up_welcome_order_confirmation(suite: Suite) -> None:
    # given a new user
    _, email, token = suite.sign_up("story")

    # then the welcome notification is recorded and its email written (mailed once it committed)
    wait_for(lambda: "welcome" in kinds(suite, token), what="welcome notification")
    wait_for(
        lambda: any(email in m and "Welcome aboard" in m for m in suite.mails()), what="the welcome mail"
    )

    # when the user places an order (accepted once orders has seen user.created)
    order = {
        "items": [
            {"sku": "SKU-1", "quantity": 2, "unit_price": "9.99"},
            {"sku": "SKU-2", "quantity": 1, "unit_price": "0.01"},
        ]
    }

    def place() -> tuple[int, dict[str, object]] | None:
        status, body = suite.call("POST", "orders", "/api/orders/", order, token=token)
        assert status in (201, 409), (status, body)
        return (status, body) if status == 201 else None

    status, placed = wait_for(place, what="order accepted")
    assert Decimal(str(placed["total"])) == Decimal("19.99")
    assert placed["status"] == "placed"

    # then the confirmation follows, to the same address, and the order is listed once
    wait_for(lambda: "order_placed" in kinds(suite, token), what="order_placed notification")
    wait_for(
        lambda: any(email in m and f"Order {placed['id']} placed" in m for m in suite.mails()),
        what="the order_placed mail",
    )
    status, listed = suite.call("GET", "orders", "/api/orders/", token=token)
    assert status == 200 and [o["id"] for o in listed["results"]] == [placed["id"]]
    assert sorted(kinds(suite, token)) == ["order_placed", "welcome"]


def test_unknown_customer_gets_a_clear_conflict(suite: Suite) -> None:
    # given a valid token for a user the orders service never heard of
    token = access_token(uuid.uuid4())
    # when it orders
    status, body = suite.call(
        "POST",
        "orders",
        "/api/orders/",
        {"items": [{"sku": "A", "quantity": 1, "unit_price": "1.00"}]},
        token=token,
    )
    # then the refusal says why, and that it is worth retrying
    assert status == 409
    assert body["code"] == "customer_unknown"
    assert "does not know this customer yet" in body["detail"]


def test_users_are_isolated(suite: Suite) -> None:
    _, _, alice = suite.sign_up("alice")
    _, _, bob = suite.sign_up("bob")
    placed = suite.place_order(
        alice, [{"sku": "A", "quantity": 1, "unit_price": "5.00"}], what="alice's order"
    )
    status, _ = suite.call("GET", "orders", f"/api/orders/{placed['id']}/", token=bob)
    assert status == 404
    status, body = suite.call("GET", "orders", "/api/orders/", token=bob)
    assert status == 200 and body["results"] == []
    wait_for(lambda: "order_placed" in kinds(suite, alice), what="alice's confirmation")
    assert "order_placed" not in kinds(suite, bob)
