"""When the relay lingers: under load, not at a moderate rate, never for a lone event."""

from __future__ import annotations

from common.bus.outbox.relay import LINGER_WORTH_ROWS, worth_lingering


def lingers(claims: list[int]) -> list[bool]:
    """The decision after each claim of a run of claims."""
    decisions, lingered = [], False
    for claimed in claims:
        lingered = worth_lingering(claimed, lingered=lingered, backlog=False)
        decisions.append(lingered)
    return decisions


def test_a_lone_event_is_never_held_back() -> None:
    assert lingers([1, 1, 1]) == [False, False, False]


def test_under_load_the_relay_keeps_lingering() -> None:
    # a batch of several rows, then lingers that each gather a full worth of rows
    assert lingers([2, LINGER_WORTH_ROWS, LINGER_WORTH_ROWS + 5]) == [True, True, True]


def test_at_a_moderate_rate_a_linger_that_gathers_little_is_not_repeated() -> None:
    # each linger would gather two rows (200 events/s, 10 ms): lingering once, then not again
    assert lingers([2, 2, 1, 2, 2]) == [True, False, False, True, False]


def test_with_a_backlog_the_relay_does_not_linger() -> None:
    assert not worth_lingering(50, lingered=True, backlog=True)
    assert not worth_lingering(2, lingered=False, backlog=True)
