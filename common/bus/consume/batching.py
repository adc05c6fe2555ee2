"""Consumption in batches: events that arrive together (read back to back from the broker
connection), or that wait while every pool process is busy, are handed to one pool process together
and handled in one transaction (one inbox statement, one commit).

Why: on the success path most of what a consumer spent per event was transaction overhead and
Celery's per-task dispatch to the pool (docs/performance.md). Nothing waits for a batch to fill: an
event is handed over as soon as nothing more is ready to read and a process is free, and a lone
event goes alone, through Celery's own tracer, so batching adds no latency. Each event
keeps its Celery request: acks, retries, dead letters, Flower's task events and a lost worker (every
event of its batch is requeued) stay per event. A batch whose transaction fails is rolled back and
its events run one by one through the tracer, as they would have without batching.
"""

from __future__ import annotations

import logging
import select
from collections import deque
from collections.abc import Callable
from functools import partial
from time import monotonic
from typing import Any
from weakref import ref

from celery import Celery, Task, current_app
from celery.app.trace import fast_trace_task, trace_task_ret
from celery.worker import state
from celery.worker.request import Request
from celery.worker.strategy import default
from django import db
from kombu.serialization import loads, prepare_accept_content

from common.bus import metrics
from common.bus.consume.deadletters import H_CRASHES as CRASHES
from common.bus.consume.handling import Parsed, handle_batch, parse

log = logging.getLogger("common.bus.consume.worker")

TraceArgs = tuple[str, str, dict[str, Any], bytes, str, str]  # what Celery's tracer takes
Outcome = tuple[int, Any, float]  # what it returns: (failed, result or ExceptionInfo, runtime)


def strategy(task: Task[Any, Any], app: Celery, consumer: Any, **options: Any) -> Any:
    """Celery's default strategy, handing each request to the consumer's batcher, not the pool."""
    size = int(app.conf.bus_batch_size)
    if size <= 1:
        return default(task, app, consumer, **options)
    batcher = getattr(consumer, "bus_batcher", None)
    if batcher is None:  # one per consumer, for every event type, kept across reconnections
        batcher = consumer.bus_batcher = Batcher(consumer.pool, size, partial(_more_to_read, consumer))
        if consumer.hub is not None:
            consumer.hub.on_tick.add(batcher.tick)  # after each message the event loop read
    return default(task, app, _Handing(consumer, batcher.submit), **options)


def _more_to_read(consumer: Any) -> bool:
    """Whether the broker connection has bytes waiting: likely the next delivery, read next."""
    try:
        sock = consumer.connection.connection.transport.sock
        return bool(select.select([sock], [], [], 0)[0])
    except Exception:  # noqa: BLE001 - no connection (or not a socket): nothing to wait for
        return False


class _Handing:
    """The consumer as the default strategy sees it, with `on_task_request` replaced."""

    def __init__(self, consumer: Any, on_task_request: Callable[[Request], None]) -> None:
        self._consumer = consumer
        self.on_task_request = on_task_request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


class Batcher:
    """Runs in the worker's main process (its event loop): no locks needed."""

    def __init__(self, pool: Any, size: int, more_to_read: Callable[[], bool] = lambda: False) -> None:
        self.pool = pool
        self.size = size
        self.more_to_read = more_to_read
        self.waiting: deque[Request] = deque()
        self.jobs: set[object] = set()  # handed to the pool and not finished
        self.accepted: set[object] = set()  # of those, the ones a pool process has started

    def submit(self, request: Request) -> None:
        """Celery's `on_task_request`: called for each message as the event loop reads it."""
        self.waiting.append(request)
        if len(self.waiting) >= self.size or not self.more_to_read():
            self._flush()

    def tick(self) -> None:
        """Once per event-loop iteration: if what was ready to read is read, hand it over."""
        if self.waiting and not self.more_to_read():
            self._flush()

    def connection_closed(self) -> None:
        """Celery's consumer lost the broker connection and flushed the pool: billiard dropped
        every job no process had accepted yet, without calling any of its callbacks (their
        messages come back from the broker). Those jobs no longer take a process; counted still,
        they would keep the batcher from ever handing over again."""
        self.jobs &= self.accepted

    def _flush(self) -> None:
        if _shutting_down():
            return  # shutting down: what waits stays unacked, and the broker redelivers it
        while self.waiting and len(self.jobs) < (self.pool.limit or 1):
            batch = self._take()
            if batch:
                self._apply(batch)

    def _take(self) -> list[Request]:
        """The next job: waiting events up to the batch size. An event that was redelivered (its
        process died, perhaps because of a batch-mate), came back after a crash, or is a retry (it
        failed before) goes alone,
        so a poison event cannot take others down with it twice or roll back their batch again."""
        batch: list[Request] = []
        while self.waiting and len(batch) < self.size:
            request = self.waiting[0]
            if request not in state.reserved_requests or request.revoked():
                # not reserved any more: its connection closed, so it cannot be acked, and the
                # broker redelivers it
                self.waiting.popleft()
                continue
            alone = (
                request.delivery_info.get("redelivered")
                or request.request_dict.get("retries")
                or request.request_dict.get(CRASHES)
            )
            if alone and batch:
                break
            batch.append(self.waiting.popleft())
            if alone:
                break
        return batch

    def _apply(self, batch: list[Request]) -> None:
        """One pool job; its outcome is settled per request, as Celery does for a job of one."""
        job = object()
        self.jobs.add(job)
        task = batch[0].task

        def each(settle: Callable[[Request], None]) -> None:
            for request in batch:
                try:
                    settle(request)
                except Exception:  # the other requests must still be settled
                    log.exception("settling %s %s failed", request.name, request.id)

        def done() -> None:
            self.jobs.discard(job)
            self.accepted.discard(job)

        def accepted(pid: str, at: float) -> None:
            if job in self.jobs:
                self.accepted.add(job)
            each(lambda request: request.on_accepted(pid, at))

        def finished(outcomes: list[Outcome]) -> None:
            done()
            settle = iter(outcomes)
            each(lambda request: request.on_success(next(settle)))
            self._flush()

        def lost(exc_info: Any) -> None:
            """The job's process died, was terminated (revoke) or ran past the hard time limit.
            Alone, an event meets Celery's (and our request's) handling of that. In a batch, only a
            revoked event does; its batch-mates did nothing wrong: they are requeued, come back
            alone, and the inbox skips those that committed before the end."""
            done()
            if len(batch) == 1:
                each(lambda request: request.on_failure(exc_info))
            else:
                each(lambda request: _requeue_unless_revoked(request, exc_info))
            self._flush()

        def timed_out(soft: bool, timeout: float) -> None:
            """billiard's timeout callback (keyword arguments). The soft limit is a warning; the
            hard one ends the job, which `lost` settles."""
            if soft:
                each(lambda request: request.on_timeout(soft, timeout))

        result = self.pool.apply_async(
            run_batch,
            args=([_trace_args(request) for request in batch],),
            accept_callback=accepted,
            timeout_callback=timed_out,
            callback=finished,
            error_callback=lost,
            soft_timeout=task.soft_time_limit,
            timeout=task.time_limit,
            correlation_id=batch[0].id,
        )
        for request in batch:
            request._apply_result = ref(result)  # type: ignore[attr-defined]  # so a revoke with terminate finds the process


def _requeue_unless_revoked(request: Request, exc_info: Any) -> None:
    if request.id in state.revoked:
        request.on_failure(exc_info)
    else:
        request.reject(requeue=True)


def _shutting_down() -> bool:
    return state.should_stop not in (None, False) or state.should_terminate not in (None, False)


def _trace_args(request: Request) -> TraceArgs:
    return (
        request.type,
        request.id,
        request.request_dict,
        request.body,
        request.content_type,
        request.content_encoding,
    )


def run_batch(items: list[TraceArgs]) -> list[Outcome]:
    """In a pool process: the batch in one transaction, or each event through Celery's tracer."""
    app = current_app
    fast = app.use_fast_trace_task  # type: ignore[attr-defined]
    trace = fast_trace_task if fast else trace_task_ret  # the tracer Celery would use
    metrics.BATCH_SIZE.labels(service=app.conf.bus_service).observe(len(items))
    if len(items) == 1:
        return [trace(*items[0])]
    outcomes: dict[int, Outcome] = {}
    parsed: list[tuple[int, Parsed]] = []
    accept = prepare_accept_content(app.conf.accept_content)
    for index, (name, _, _, body, content_type, content_encoding) in enumerate(items):
        try:
            args, kwargs, _ = loads(body, content_type, content_encoding, accept=accept)
            registry = app.tasks[name].registry  # type: ignore[attr-defined]
            parsed.append((index, parse(registry, tuple(args), kwargs, task_name=name)))
        except Exception:  # noqa: BLE001 - the tracer runs it alone, finds the problem and says it
            outcomes[index] = trace(*items[index])
    if parsed:
        db.close_old_connections()  # what the task_prerun/postrun handlers do for a single task
        started = monotonic()
        try:
            handled = handle_batch([event for _, event in parsed], service=app.conf.bus_service)
        except Exception as exc:  # noqa: BLE001 - rolled back: each event gets its own transaction and fate
            log.info("a batch of %d rolled back (%s); handling its events one by one", len(parsed), exc)
            for index, _ in parsed:
                outcomes[index] = trace(*items[index])
        else:
            runtime = (monotonic() - started) / len(parsed)
            for (index, _), new in zip(parsed, handled, strict=True):
                outcomes[index] = (0, "handled" if new else "duplicate", runtime)
        db.close_old_connections()
    return [outcomes[index] for index in range(len(items))]
