"""How the worker's batcher groups events for the pool (the policy; the guarantees are tested with
real workers in tests/reliability/test_batches.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from celery.worker import state

from common.bus.consume.batching import Batcher


class FakeRequest:
    def __init__(self, name: str, *, redelivered: bool = False, retries: int = 0, crashes: int = 0) -> None:
        self.id = self.name = name
        self.type = "user.created"
        self.delivery_info = {"redelivered": redelivered}
        self.request_dict = {"retries": retries, "x-crashes": crashes}
        self.body, self.content_type, self.content_encoding = b"[]", "application/json", "utf-8"
        self.task = SimpleNamespace(soft_time_limit=60, time_limit=90)
        self.settled: list[str] = []

    def revoked(self) -> bool:
        return False

    def on_success(self, outcome: Any) -> None:
        self.settled.append("success")

    def on_accepted(self, pid: int, time_accepted: float) -> None:
        self.settled.append("accepted")


class FakePool:
    """Records the jobs it is given; `finish()` completes the oldest unfinished one, `flush()` drops
    the jobs no process accepted, without a callback, as billiard's pool does on a connection loss."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.jobs: list[tuple[list[str], Callable[[Any], None], Callable[[int, float], None]]] = []
        self.live: list[int] = []  # indexes of the jobs not finished or dropped
        self.accepted: set[int] = set()

    def apply_async(
        self,
        fn: Any,
        args: Any,
        callback: Callable[[Any], None],
        accept_callback: Callable[[int, float], None],
        **_: Any,
    ) -> object:
        (items,) = args
        self.live.append(len(self.jobs))
        self.jobs.append(([item[0] for item in items], callback, accept_callback))
        return self

    def batches(self) -> list[list[str]]:
        return [ids for ids, _, _ in self.jobs]

    def accept_all(self) -> None:
        for index in self.live:
            if index not in self.accepted:
                self.accepted.add(index)
                self.jobs[index][2](1234, 0.0)

    def finish(self) -> None:
        index = self.live.pop(0)
        ids, callback, _ = self.jobs[index]
        callback([(0, "handled", 0.001)] * len(ids))

    def flush(self) -> None:
        self.live = [index for index in self.live if index in self.accepted]


@pytest.fixture(autouse=True)
def reserved() -> Iterator[None]:
    yield
    state.reserved_requests.clear()


def received(batcher: Batcher, *requests: FakeRequest) -> list[FakeRequest]:
    for request in requests:
        state.reserved_requests.add(request)
        batcher.submit(request)  # type: ignore[arg-type]
    return list(requests)


def test_a_lone_event_goes_at_once_and_alone() -> None:
    pool = FakePool(limit=4)
    received(Batcher(pool, 50), FakeRequest("a"))
    assert pool.batches() == [["a"]]


def test_events_read_back_to_back_go_together_once_nothing_more_is_ready() -> None:
    pool, more = FakePool(limit=4), [True]
    batcher = Batcher(pool, 50, lambda: more[0])
    received(batcher, FakeRequest("a"), FakeRequest("b"))
    assert pool.batches() == []  # more bytes were waiting on the connection: read them first
    more[0] = False
    received(batcher, FakeRequest("c"))
    assert pool.batches() == [["a", "b", "c"]]


def test_the_event_loop_tick_hands_over_what_waits_when_the_rest_was_not_a_delivery() -> None:
    pool, more = FakePool(limit=4), [True]
    batcher = Batcher(pool, 50, lambda: more[0])
    received(batcher, FakeRequest("a"))
    more[0] = False  # what was waiting was a heartbeat, say
    batcher.tick()
    assert pool.batches() == [["a"]]


def test_while_every_process_is_busy_events_wait_and_then_go_together() -> None:
    pool = FakePool(limit=2)
    batcher = Batcher(pool, 50)
    first, second, *_ = received(batcher, *(FakeRequest(n) for n in "abcde"))
    assert pool.batches() == [["a"], ["b"]]

    pool.finish()

    assert pool.batches() == [["a"], ["b"], ["c", "d", "e"]]
    assert first.settled == ["success"] and not second.settled


def test_a_batch_holds_at_most_the_batch_size() -> None:
    pool = FakePool(limit=1)
    batcher = Batcher(pool, 2)
    received(batcher, *(FakeRequest(n) for n in "abcd"))
    pool.finish()
    assert pool.batches() == [["a"], ["b", "c"]]


def test_redelivered_retried_and_crashed_events_go_alone() -> None:
    pool = FakePool(limit=1)
    batcher = Batcher(pool, 50)
    received(
        batcher,
        FakeRequest("busy"),
        FakeRequest("a"),
        FakeRequest("redelivered", redelivered=True),
        FakeRequest("b"),
        FakeRequest("retry", retries=2),
        FakeRequest("c"),
        FakeRequest("crashed", crashes=1),  # sent back by the worker after its process died
    )
    for _ in range(6):
        pool.finish()
    assert pool.batches() == [["busy"], ["a"], ["redelivered"], ["b"], ["retry"], ["c"], ["crashed"]]


def test_an_event_whose_connection_closed_meanwhile_is_left_to_the_broker() -> None:
    pool = FakePool(limit=1)
    batcher = Batcher(pool, 50)
    _, gone, _ = received(batcher, FakeRequest("busy"), FakeRequest("gone"), FakeRequest("kept"))
    state.reserved_requests.discard(gone)  # what Celery does on a connection loss
    pool.finish()
    assert pool.batches() == [["busy"], ["kept"]]


def test_jobs_the_pool_dropped_on_a_connection_loss_do_not_keep_processes_taken() -> None:
    pool = FakePool(limit=2)
    batcher = Batcher(pool, 50)
    received(batcher, FakeRequest("started"))
    pool.accept_all()
    received(batcher, FakeRequest("not-started"))  # handed over; no process took it yet

    state.reserved_requests.clear()  # the connection is lost: Celery's consumer forgets them,
    pool.flush()  # flushes the pool (the job no process accepted is dropped)
    batcher.connection_closed()  # and tells the batcher (EventConsumer.on_close)

    received(batcher, FakeRequest("after"), FakeRequest("after-2"))
    assert pool.batches()[2:] == [["after"]]  # one process is free: the other runs "started"
    pool.finish()  # "started" ends
    assert pool.batches()[2:] == [["after"], ["after-2"]]
