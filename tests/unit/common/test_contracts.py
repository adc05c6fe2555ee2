from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from common.contracts import (
    Envelope,
    OrderLine,
    OrderPlaced,
    OrderPlacedV1,
    UnknownEventType,
    UnknownEventVersion,
    UserCreated,
    contract_for,
    registered,
    upcast,
    versions_of,
)


def user_created(**overrides: object) -> UserCreated:
    fields: dict[str, object] = dict(
        user_id=uuid.uuid4(), email="ada@example.com", first_name="Ada", last_name="Lovelace"
    )
    fields.update(overrides)
    return UserCreated.model_validate(fields)


def test_contracts_are_frozen_and_refuse_extra_fields() -> None:
    event = user_created()
    with pytest.raises(ValidationError):
        event.email = "other@example.com"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="is_staff"):
        user_created(is_staff=True)


def test_contract_validates_email() -> None:
    with pytest.raises(ValidationError, match="email"):
        user_created(email="not-an-email")


def test_order_total_must_be_the_exact_sum_of_lines() -> None:
    lines = [{"sku": "A", "quantity": 3, "unit_price": "0.10"}]
    ok = OrderPlaced.model_validate(
        dict(order_id=uuid.uuid4(), customer_id=uuid.uuid4(), lines=lines, total="0.30", currency="EUR")
    )
    assert ok.total == Decimal("0.30")
    with pytest.raises(ValidationError, match="not the sum of the lines"):
        OrderPlaced.model_validate(
            dict(order_id=uuid.uuid4(), customer_id=uuid.uuid4(), lines=lines, total="0.31", currency="EUR")
        )


def test_order_needs_at_least_one_line() -> None:
    with pytest.raises(ValidationError, match="lines"):
        OrderPlaced.model_validate(
            dict(order_id=uuid.uuid4(), customer_id=uuid.uuid4(), lines=[], total="0", currency="EUR")
        )


def test_registry_names_unknown_types_and_versions() -> None:
    assert contract_for("user.created", 1) is UserCreated
    with pytest.raises(UnknownEventType, match=r"user\.exploded"):
        contract_for("user.exploded", 1)
    with pytest.raises(UnknownEventVersion, match=r"no schema version 9 \(known: \[1\]\)"):
        contract_for("user.created", 9)


def test_envelope_round_trips_through_json() -> None:
    event = user_created()
    envelope = Envelope.wrap(event, producer="users", aggregate_id=str(event.user_id), aggregate_version=1)
    parsed = Envelope.model_validate_json(envelope.model_dump_json())
    assert parsed == envelope
    assert parsed.contract() == event
    assert parsed.type == "user.created" and parsed.version == 1
    assert parsed.correlation_id == parsed.id  # a fresh correlation starts at the first event


def test_envelope_keeps_the_correlation_it_is_given() -> None:
    correlation, cause = uuid.uuid4(), uuid.uuid4()
    envelope = Envelope.wrap(
        user_created(),
        producer="users",
        aggregate_id="x",
        aggregate_version=2,
        correlation_id=correlation,
        causation_id=cause,
    )
    assert (envelope.correlation_id, envelope.causation_id) == (correlation, cause)


def test_envelope_refuses_naive_times_and_bad_types() -> None:
    good = Envelope.wrap(user_created(), producer="users", aggregate_id="x", aggregate_version=1)
    data = good.to_json_dict()
    with pytest.raises(ValidationError, match="occurred_at"):
        Envelope.model_validate({**data, "occurred_at": datetime(2026, 1, 1).isoformat()})
    with pytest.raises(ValidationError, match="type"):
        Envelope.model_validate({**data, "type": "User Created"})
    with pytest.raises(ValidationError, match="aggregate_version"):
        Envelope.model_validate({**data, "aggregate_version": 0})


def test_an_older_version_is_upcast_to_the_one_a_consumer_reads() -> None:
    v1 = OrderPlacedV1(
        order_id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        total=Decimal("2.00"),
        lines=(OrderLine(sku="A", quantity=2, unit_price=Decimal("1.00")),),
    )
    data = upcast("order.placed", v1.model_dump(mode="json"), from_version=1, to_version=2)
    v2 = OrderPlaced.model_validate(data)
    assert v2.currency == "EUR" and v2.order_id == v1.order_id and v2.total == v1.total


def test_a_newer_version_or_a_missing_upcaster_is_refused_with_the_reason() -> None:
    with pytest.raises(UnknownEventVersion, match="newer than v1, which this consumer was written for"):
        upcast("order.placed", {}, from_version=2, to_version=1)
    with pytest.raises(UnknownEventVersion, match=r"no upcaster from user\.created v1 to v2"):
        upcast("user.created", {}, from_version=1, to_version=2)


def test_every_event_type_has_explicit_versions_and_a_producer() -> None:
    for (event_type, version), cls in registered().items():
        assert cls.event_type == event_type and cls.version == version
        assert cls.producer in {"users", "orders", "notifications", "test"}
    assert versions_of("order.placed") == [1, 2]
