"""What becomes of a delivery: handled, duplicate, retried later, or parked (handlers run directly)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError
from django.utils import timezone
from pytest_django import Settings

from common.bus.consume import inbox
from common.bus.consume.failures import Park, RetryLater, retry_delay
from common.bus.consume.handlers import HandlerRegistry
from common.bus.consume.tasks import handle_message
from common.bus.models import InboxMessage
from common.contracts import Envelope, UserCreated

pytestmark = pytest.mark.django_db


class NotYet(Exception):
    pass


calls: list[str] = []
registry = HandlerRegistry("test")


@registry.handles(UserCreated, transient=(NotYet,))
def handler(event: UserCreated, envelope: Envelope) -> None:
    calls.append(event.first_name)
    if event.first_name == "transient":
        raise NotYet("replica not there yet")
    if event.first_name == "database":
        raise OperationalError("server closed the connection unexpectedly")
    if event.first_name == "bug":
        raise KeyError("missing")
    if event.first_name == "slow":
        raise SoftTimeLimitExceeded()


def args_for(first_name: str) -> tuple[dict[str, Any], ...]:
    event = UserCreated(user_id=uuid.uuid4(), email="a@example.com", first_name=first_name, last_name="L")
    return (Envelope.wrap(event, producer="users", aggregate_id="a", aggregate_version=1).to_json_dict(),)


def run(args: tuple[Any, ...], attempt: int = 1) -> str:
    return handle_message(registry, args, {}, task_name="user.created", attempt=attempt)


@pytest.fixture(autouse=True)
def budget(settings: Settings) -> None:
    settings.BUS_RETRY_MAX_ATTEMPTS = 3
    settings.BUS_RETRY_BASE_SECONDS = 2
    settings.BUS_RETRY_MAX_DELAY_SECONDS = 300
    calls.clear()


def test_an_event_is_handled_once_and_its_copy_is_a_duplicate() -> None:
    args = args_for("ok")
    assert run(args) == "handled"
    assert run(args) == "duplicate"
    assert calls == ["ok"]
    assert InboxMessage.objects.count() == 1


@pytest.mark.parametrize("cause", ["transient", "database", "slow"])
def test_transient_failures_are_retried_later_and_leave_no_inbox_row(cause: str) -> None:
    with pytest.raises(RetryLater) as caught:
        run(args_for(cause), attempt=1)
    assert caught.value.attempt == 1 and 2 <= caught.value.delay <= 3
    assert not InboxMessage.objects.exists()  # rolled back with the handler: the retry can apply


def test_the_last_attempt_parks_instead_of_retrying() -> None:
    with pytest.raises(Park) as caught:
        run(args_for("transient"), attempt=3)
    assert caught.value.kind == "retries-exhausted"
    assert "gave up after 3 attempts: NotYet: replica not there yet" in caught.value.cause
    assert caught.value.exception_type.endswith("NotYet")


def test_a_non_transient_exception_propagates_to_be_parked() -> None:
    with pytest.raises(KeyError):
        run(args_for("bug"))
    assert not InboxMessage.objects.exists()


def test_an_invalid_message_is_parked_without_calling_the_handler() -> None:
    with pytest.raises(Park) as caught:
        run(({"not": "an envelope"},))
    assert caught.value.kind == "invalid" and "invalid envelope" in caught.value.cause
    assert calls == []


def test_retry_delays_grow_exponentially_with_bounded_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt, (low, high) in enumerate([(2, 3), (4, 6), (8, 12), (16, 24)], start=1):
        delays = {retry_delay(attempt, base=2, maximum=300, rng=rng) for _ in range(200)}
        assert min(delays) >= low and max(delays) <= high, (attempt, delays)
        assert len(delays) > 1 or low == high  # jitter spreads retries
    assert retry_delay(20, base=2, maximum=300, rng=rng) == 300
    assert retry_delay(1, base=1, maximum=300, rng=rng) == 1  # whole seconds, never below one


def test_inbox_rows_are_pruned_after_their_retention() -> None:
    old, recent = args_for("old"), args_for("recent")
    run(old)
    run(recent)
    InboxMessage.objects.filter(event_id=old[0]["id"]).update(handled_at=timezone.now() - timedelta(days=31))

    assert inbox.prune(older_than=timedelta(days=30)) == 1
    assert [str(i) for i in InboxMessage.objects.values_list("event_id", flat=True)] == [recent[0]["id"]]
