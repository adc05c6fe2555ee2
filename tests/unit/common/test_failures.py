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
from common.bus.consume.handling import Delivery, outcomes
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
    """One delivery, as the Celery task runs it: its outcome, or the exception the task raises."""
    outcome = outcomes(registry, [Delivery("user.created", args, {}, attempt)])[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


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


def test_a_batch_commits_together_and_a_failure_gives_each_event_its_own_fate() -> None:
    # given a batch of a new event, a copy of one handled before, a bad message and a transient
    # failure (which rolls the first transaction back)
    handled_before = args_for("again")
    run(handled_before)
    calls.clear()
    deliveries = [
        Delivery("user.created", args_for("ok"), {}),
        Delivery("user.created", handled_before, {}),
        Delivery("user.created", ({"not": "an envelope"},), {}),
        Delivery("user.created", args_for("transient"), {}, attempt=2),
    ]

    # when they are handled as one batch
    results = outcomes(registry, deliveries)

    # then each gets its own outcome, in order, and only the new event's effect is committed
    assert results[:2] == ["handled", "duplicate"]
    assert isinstance(results[2], Park) and results[2].kind == "invalid"
    assert isinstance(results[3], RetryLater) and results[3].attempt == 2
    assert calls == ["ok", "transient", "ok", "transient"]  # the batch, then each alone
    assert InboxMessage.objects.count() == 2


def test_a_batch_without_failures_runs_in_one_transaction() -> None:
    results = outcomes(registry, [Delivery("user.created", args_for(name), {}) for name in ("a", "b", "c")])

    assert results == ["handled", "handled", "handled"]
    assert calls == ["a", "b", "c"]  # each handler ran once: no rollback, no second pass
