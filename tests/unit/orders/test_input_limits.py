"""Bad input that costs the server: answered with a short 400 (or a 429), never a 500 or a
megabyte of errors, and nothing written."""

from __future__ import annotations

import pytest

from orders_svc.orders.models import Order
from tests.unit.orders.test_orders import ITEMS, client_for, known_customer

pytestmark = pytest.mark.django_db


def test_ten_thousand_bad_lines_get_one_short_error() -> None:
    lines = [{"sku": "", "quantity": 0, "unit_price": "x"}] * 10_000
    response = client_for(known_customer()).post("/api/orders/", {"items": lines}, format="json")
    assert response.status_code == 400
    assert len(response.content) < 500, len(response.content)
    assert "no more than 100" in response.json()["items"][0]
    assert not Order.objects.exists()


def test_deeply_nested_json_is_a_400_not_a_500() -> None:
    client = client_for(known_customer())
    for body in ("[" * 100_000 + "]" * 100_000, '{"items": ' + "[" * 40 + "]" * 40 + "}"):
        response = client.post("/api/orders/", body, content_type="application/json")
        assert response.status_code == 400, response.content[:200]
        assert "nested more than 32 levels deep" in response.json()["detail"]
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"unit_price": "٩.٩٩"}, "unit_price"),  # Arabic-Indic digits: the pattern means ASCII
        ({"unit_price": "\uff19.\uff19\uff19"}, "unit_price"),  # fullwidth nines
        ({"quantity": "٣"}, "quantity"),
        ({"quantity": "3"}, "quantity"),  # the schema says integer, not a string
        ({"quantity": True}, "quantity"),
        ({"quantity": 2.0}, "quantity"),
    ],
)
def test_numbers_are_what_the_schema_says(line: dict[str, object], field: str) -> None:
    item = {**ITEMS[0], **line}
    response = client_for(known_customer()).post("/api/orders/", {"items": [item]}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["items"]["0"]
    assert not Order.objects.exists()


def test_placing_orders_is_throttled_per_caller() -> None:
    """Each order placed sends mail: THROTTLE_ORDERS (60/min) per caller."""
    first, second = client_for(known_customer()), client_for(known_customer("bob@example.com"))
    codes = [first.post("/api/orders/", {"items": ITEMS}, format="json").status_code for _ in range(62)]
    assert codes[:60] == [201] * 60 and codes[60:] == [429, 429]
    assert first.get("/api/orders/").status_code == 200  # reading stays free
    assert second.post("/api/orders/", {"items": ITEMS}, format="json").status_code == 201


def test_a_body_over_the_cap_or_not_json_is_refused() -> None:
    client = client_for(known_customer())
    huge = '{"items": [], "pad": "' + "x" * (3 << 20) + '"}'  # Django's cap: 2.5 MB
    response = client.post("/api/orders/", huge, content_type="application/json")
    assert response.status_code == 400
    response = client.post("/api/orders/", "items=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert not Order.objects.exists()
