"""Parsing a received message: everything that can never be handled is refused with its reason."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from common.bus.consume.consumer import producer_problem
from common.bus.consume.handlers import HandlerRegistry
from common.bus.consume.handling import InvalidMessage, parse
from common.contracts import Envelope, UserCreated

registry = HandlerRegistry("test")
seen: list[UserCreated] = []


@registry.handles(UserCreated)
def remember(event: UserCreated, envelope: Envelope) -> None:
    seen.append(event)


def envelope_dict(**overrides: Any) -> dict[str, Any]:
    event = UserCreated(user_id=uuid.uuid4(), email="ada@example.com", first_name="A", last_name="L")
    data = Envelope.wrap(event, producer="users", aggregate_id="a", aggregate_version=1).to_json_dict()
    data.update(overrides)
    return data


def test_a_valid_message_parses_into_the_contract() -> None:
    envelope, subscription, event = parse(registry, (envelope_dict(),), {}, task_name="user.created")
    assert isinstance(event, UserCreated)
    assert subscription.handler is remember
    assert envelope.type == "user.created"


@pytest.mark.parametrize(
    ("args", "kwargs", "reason"),
    [
        ((), {}, "exactly one envelope"),
        (("a", "b"), {}, "exactly one envelope"),
        ((envelope_dict(),), {"x": 1}, "exactly one envelope"),
        (("not a dict",), {}, "invalid envelope"),
        (({"id": "x"},), {}, "invalid envelope: id"),
        ((envelope_dict(aggregate_version="two"),), {}, "aggregate_version"),
        ((envelope_dict(type="order.placed"),), {}, "does not match task"),
        ((envelope_dict(version=2),), {}, "cannot handle user.created v2: user.created v2 is newer"),
        ((envelope_dict(data={"user_id": "nope"}),), {}, "data does not match its contract: user_id"),
        ((envelope_dict(data={**envelope_dict()["data"], "admin": True}),), {}, "admin"),
        # the envelope's producer is free text: it must be the contract's
        ((envelope_dict(producer="orders"),), {}, "user.created is produced by users, not 'orders'"),
    ],
)
def test_invalid_messages_are_refused_with_their_reason(
    args: tuple[Any, ...], kwargs: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse(registry, args, kwargs, task_name="user.created")
    assert reason in str(caught.value)


def test_a_type_the_service_does_not_handle_is_refused() -> None:
    with pytest.raises(InvalidMessage, match=r"does not handle 'user\.deleted'"):
        parse(registry, (envelope_dict(type="user.deleted"),), {}, task_name="user.deleted")


def test_a_registry_refuses_two_handlers_for_one_event() -> None:
    other = HandlerRegistry("other")
    other.handles(UserCreated)(remember)
    with pytest.raises(ValueError, match=r"already handles user.created \(v1\)"):
        other.handles(UserCreated)(remember)
    assert other.event_types() == ["user.created"]


@pytest.mark.parametrize(
    ("task", "user_id", "refused"),
    [
        ("user.created", "users-broker", False),  # its producer's broker user
        ("user.created", "notifications-broker", False),  # this service's own copy (retry, replay)
        ("user.created", "orders-broker", True),  # another service
        ("user.created", None, True),  # no user_id at all
        ("order.placed", "orders-broker", False),
        ("order.placed", "users-broker", True),
        ("no.such.type", None, False),  # refused later, as an unknown type
    ],
)
def test_an_event_is_accepted_only_from_its_producers_broker_user(
    task: str, user_id: str | None, refused: bool
) -> None:
    users = {"users": "users-broker", "orders": "orders-broker", "notifications": "notifications-broker"}
    message = SimpleNamespace(headers={"task": task, "id": "x"}, properties={"user_id": user_id})
    failure = producer_problem(message, users=users, own="notifications-broker")
    assert (failure is not None) == refused
    if failure is not None:
        assert failure.kind == "forged" and repr(user_id) in failure.message
