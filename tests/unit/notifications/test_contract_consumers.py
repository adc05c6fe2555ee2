"""Consumer contract tests of notifications: examples of every version of every event type it consumes,
generated from the producers' contracts, go through its real parser and handlers."""

from __future__ import annotations

import pytest

from common.contracts import OrderPlaced, base
from notifications_svc.notifications.handlers import registry
from tests.support.contract_examples import check_consumer, published_versions

CONSUMED = [(t, v) for t, v in published_versions() if t in registry.event_types()]


@pytest.mark.django_db
@pytest.mark.parametrize(("event_type", "version"), CONSUMED, ids=[f"{t}-v{v}" for t, v in CONSUMED])
def test_every_published_version_is_readable(event_type: str, version: int) -> None:
    check_consumer(registry, event_type, version)


def test_it_consumes_something() -> None:
    assert CONSUMED


@pytest.mark.django_db
def test_a_producer_version_the_consumer_was_not_written_for_fails_the_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given orders starts publishing an order.placed v3 that notifications does not know
    class OrderPlacedV3(OrderPlaced):
        pass

    monkeypatch.setitem(base._contracts, ("order.placed", 3), OrderPlacedV3)
    OrderPlacedV3.version = 3

    # then the consumer contract test says so, naming the consumer, the type and the version
    with pytest.raises(AssertionError, match=r"notifications cannot read order\.placed v3"):
        check_consumer(registry, "order.placed", 3)
