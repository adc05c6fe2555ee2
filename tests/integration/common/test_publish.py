"""publish() against the real database and broker: an event exists only if its change commits."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from common.bus.publisher import PublishOutsideTransaction, publish
from common.contracts import UserCreated
from common.observability.context import in_flight
from tests.support.tap import EventTap

pytestmark = pytest.mark.django_db(transaction=True)


def event() -> UserCreated:
    return UserCreated(user_id=uuid.uuid4(), email="ada@example.com", first_name="Ada", last_name="L")


def test_a_committed_event_is_published_with_its_envelope(tap: EventTap) -> None:
    with transaction.atomic():
        envelope = publish(event(), aggregate_id="agg-1", aggregate_version=1)

    [received] = tap.wait_for(1)
    assert received["routing_key"] == "user.created"
    assert received["headers"]["task"] == "user.created"
    assert received["envelope"]["id"] == str(envelope.id)
    assert received["envelope"]["producer"] == "users"
    assert received["properties"]["delivery_mode"] == 2


def test_a_rolled_back_transaction_publishes_nothing(tap: EventTap) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        publish(event(), aggregate_id="agg-2", aggregate_version=1)
        raise Boom
    with transaction.atomic():  # a marker sent afterwards proves the tap was listening
        marker = publish(event(), aggregate_id="marker", aggregate_version=1)

    received = tap.wait_for(1)
    assert [r["envelope"]["id"] for r in received] == [str(marker.id)]


def test_publish_outside_a_transaction_is_refused() -> None:
    with pytest.raises(PublishOutsideTransaction, match="inside transaction.atomic"):
        publish(event(), aggregate_id="agg-3", aggregate_version=1)


def test_the_correlation_in_flight_is_carried(tap: EventTap) -> None:
    correlation, cause = uuid.uuid4(), uuid.uuid4()
    with in_flight(correlation=correlation, causation=cause), transaction.atomic():
        publish(event(), aggregate_id="agg-4", aggregate_version=1)

    [received] = tap.wait_for(1)
    assert received["envelope"]["correlation_id"] == str(correlation)
    assert received["envelope"]["causation_id"] == str(cause)
