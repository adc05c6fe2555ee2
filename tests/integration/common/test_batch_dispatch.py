"""Several events in one transaction (`handle_batch`): each applied once, all or none committed."""

from __future__ import annotations

import uuid

import pytest

from common.bus.consume import inbox
from common.bus.consume.handlers import HandlerRegistry
from common.bus.consume.handling import Parsed, handle_batch, parse
from common.bus.models import InboxMessage
from common.contracts import Envelope, UserCreated
from common.observability.context import event_id

pytestmark = pytest.mark.django_db

registry = HandlerRegistry("test")
calls: list[tuple[str, uuid.UUID | None]] = []


@registry.handles(UserCreated)
def remember(event: UserCreated, envelope: Envelope) -> None:
    if event.first_name == "broken":
        raise RuntimeError("a handler bug")
    calls.append((event.email, event_id.get()))


def parsed(name: str = "ok") -> Parsed:
    event = UserCreated(
        user_id=uuid.uuid4(), email=f"{uuid.uuid4().hex}@example.com", first_name=name, last_name="L"
    )
    envelope = Envelope.wrap(event, producer="users", aggregate_id="a", aggregate_version=1)
    return parse(registry, (envelope.to_json_dict(),), {}, task_name="user.created")


def recorded(items: list[Parsed]) -> set[uuid.UUID]:
    ids = [envelope.id for envelope, _, _ in items]
    return set(InboxMessage.objects.filter(event_id__in=ids).values_list("event_id", flat=True))


def test_new_events_run_once_each_and_duplicates_are_skipped() -> None:
    calls.clear()
    fresh, handled_before = parsed(), parsed()
    inbox.first_deliveries([handled_before[0]])
    items = [fresh, handled_before, fresh]  # an old event, and a new one delivered twice

    assert handle_batch(items, service="test") == [True, False, False]

    # the handler ran once, for the new event, inside that event's logging context
    envelope, _, event = fresh
    assert isinstance(event, UserCreated)
    assert calls == [(event.email, envelope.id)]
    assert recorded(items) == {fresh[0].id, handled_before[0].id}


def test_a_failing_handler_rolls_the_whole_batch_back() -> None:
    calls.clear()
    items = [parsed(), parsed("broken"), parsed()]

    with pytest.raises(RuntimeError, match="a handler bug"):
        handle_batch(items, service="test")

    # nothing of the batch is committed: each event can be handled again on its own
    assert recorded(items) == set()
    assert [handle_batch([item], service="test") for item in (items[0], items[2])] == [[True], [True]]
    assert recorded(items) == {items[0][0].id, items[2][0].id}
