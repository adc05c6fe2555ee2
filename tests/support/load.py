"""Customers going about their business over HTTP, recording what the APIs acknowledged."""

from __future__ import annotations

from tests.support.checker import History
from tests.support.suite import Suite

ITEMS = [{"sku": "A", "quantity": 1, "unit_price": "1.50"}]


def sign_up(suite: Suite, history: History, tag: str) -> tuple[str, str]:
    """A new customer (acknowledged, so recorded): their id and access token."""
    user_id, email, token = suite.sign_up(tag)
    history.signed_up(user_id, email)
    return user_id, token


def shop(
    suite: Suite, history: History, user_id: str, token: str, *, orders: int = 2, cancel: int = 1
) -> None:
    """Place `orders` orders (each once orders knows the customer), then cancel the first `cancel`."""
    placed = []
    for n in range(orders):
        order = suite.place_order(token, ITEMS, timeout=180, what=f"order {n + 1} of {user_id}")
        history.ordered(str(order["id"]), user_id)
        placed.append(str(order["id"]))
    for order_id in placed[:cancel]:
        status, body = suite.call("POST", "orders", f"/api/orders/{order_id}/cancel/", token=token)
        assert status == 200, (status, body)
        history.cancelled_order(order_id)


def journey(suite: Suite, history: History, n: int) -> None:
    """Sign up, place two orders, cancel the first."""
    user_id, token = sign_up(suite, history, f"customer{n}")
    shop(suite, history, user_id, token)
