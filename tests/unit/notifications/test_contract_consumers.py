"""Consumer contract tests of notifications: examples of every version of every event type it consumes,
generated from the producers' contracts, go through its real parser and handlers, which write what
they should."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.contracts import OrderPlaced, base
from notifications_svc.notifications.handlers import registry
from notifications_svc.notifications.models import Contact, Notification
from tests.support.contract_examples import check_consumer, published_versions

CONSUMED = [(t, v) for t, v in published_versions() if t in registry.event_types()]


def a_known_contact(data: dict[str, Any]) -> None:
    """Orders are for customers notifications already knows (user.created came first)."""
    for field in ("customer_id", "user_id"):
        if field in data and not Contact.objects.filter(user_id=data[field]).exists():
            Contact.objects.create(user_id=uuid.UUID(str(data[field])), email="c@example.com", version=1)
            return


def notified(envelope_id: uuid.UUID) -> bool:
    return Notification.objects.filter(event_id=envelope_id).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("event_type", "version"), CONSUMED, ids=[f"{t}-v{v}" for t, v in CONSUMED])
def test_every_published_version_is_readable_and_handled(event_type: str, version: int) -> None:
    given = a_known_contact if event_type.startswith("order.") else None
    handled = check_consumer(registry, event_type, version, given=given)

    # the handlers' bodies ran: each order event notified its customer (but cancellations for a
    # deleted account, by design), and each sign-up was welcomed
    should_notify = [
        e for e in handled if e.type != "order.cancelled" or e.data["reason"] != "account_deleted"
    ]
    if event_type in ("order.placed", "order.cancelled", "user.created"):
        assert should_notify and all(notified(e.id) for e in should_notify), event_type
        assert not any(notified(e.id) for e in handled if e not in should_notify)
    else:
        assert not any(notified(e.id) for e in handled)


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
        check_consumer(registry, "order.placed", 3, given=a_known_contact)


@pytest.mark.django_db
def test_an_example_the_handler_only_retries_fails_the_build() -> None:
    # an order for a customer notifications never heard of is retried, not handled: that is no pass
    with pytest.raises(AssertionError, match=r"notifications retried order\.placed v2"):
        check_consumer(registry, "order.placed", 2)
