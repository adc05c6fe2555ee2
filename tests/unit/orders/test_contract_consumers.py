"""Consumer contract tests of orders: examples of every version of every event type it consumes,
generated from the producers' contracts, go through its real parser and handlers, which keep the
customer replica."""

from __future__ import annotations

import pytest

from orders_svc.orders.handlers import registry
from orders_svc.orders.models import Customer
from tests.support.contract_examples import check_consumer, published_versions

CONSUMED = [(t, v) for t, v in published_versions() if t in registry.event_types()]


@pytest.mark.django_db
@pytest.mark.parametrize(("event_type", "version"), CONSUMED, ids=[f"{t}-v{v}" for t, v in CONSUMED])
def test_every_published_version_is_readable_and_handled(event_type: str, version: int) -> None:
    handled = check_consumer(registry, event_type, version)

    # each example's user is in the replica, a tombstone after user.deleted
    for envelope in handled:
        customer = Customer.objects.get(id=envelope.data["user_id"])
        assert (customer.deleted_at is not None) == (event_type == "user.deleted"), envelope.data
        if event_type != "user.deleted":
            assert customer.email == envelope.data["email"]


def test_it_consumes_something() -> None:
    assert CONSUMED
