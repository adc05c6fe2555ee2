"""Consumer batching (a fast path: `BUS_FAST_PATHS`, `BUS_CONSUMER_BATCH_SIZE`): events read back to
back, or waiting for a free pool process, go to one pool job and one transaction. It saves the
per-event transaction and Celery's per-task dispatch; nothing waits for a batch to fill. Each event
keeps its Celery request, settled as Celery settles a job of one (docs/architecture.md).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from functools import partial
from time import monotonic
from typing import Any

from celery import Celery, Task, current_app
from celery.worker.request import Request
from django import db
from kombu.serialization import loads, prepare_accept_content

from common.bus import metrics
from common.bus.consume.deadletters import H_CRASHES as CRASHES
from common.bus.consume.handling import Delivery, outcomes
from common.bus.internals import billiard, celery, kombu

log = logging.getLogger("common.bus.consume.worker")

Item = tuple[str, bytes, str, str, int]  # task name, body, content type and encoding, attempt
Traced = tuple[int, Any, float]  # as Celery's tracer reports a task: (failed, result or einfo, runtime)


def strategy(task: Task[Any, Any], app: Celery, consumer: Any, **options: Any) -> Any:
    """Celery's default strategy, handing each request to the consumer's batcher, not the pool."""
    batcher = getattr(consumer, "bus_batcher", None)
    if batcher is None:  # one per consumer, for every event type, kept across reconnections
        size = int(app.conf.bus_batch_size)
        batcher = consumer.bus_batcher = Batcher(consumer.pool, size, partial(kombu.bytes_waiting, consumer))
        celery.on_every_loop(consumer, batcher.tick)
    return celery.strategy_handing_to(batcher.submit, task, app, consumer, **options)


class Batcher:
    """Lives on the worker's event loop: no locks needed."""

    def __init__(self, pool: Any, size: int, more_to_read: Callable[[], bool] = lambda: False) -> None:
        self.pool = pool
        self.size = size
        self.more_to_read = more_to_read
        self.waiting: deque[Request] = deque()
        self.jobs: set[object] = set()  # handed to the pool and not finished
        self.accepted: set[object] = set()  # of those, the ones a pool process has started

    def submit(self, request: Request) -> None:
        self.waiting.append(request)
        if len(self.waiting) >= self.size or not self.more_to_read():
            self._flush()

    def tick(self) -> None:
        if self.waiting and not self.more_to_read():
            self._flush()

    def connection_closed(self) -> None:
        """The pool flush on a lost connection drops unaccepted jobs without their callbacks: counted
        still, they would stop the batcher handing over for ever."""
        self.jobs &= self.accepted

    def _flush(self) -> None:
        if celery.shutting_down():
            return  # what waits stays unacked, and the broker redelivers it
        while self.waiting and len(self.jobs) < (self.pool.limit or 1):
            batch = self._take()
            if batch:
                self._apply(batch)

    def _take(self) -> list[Request]:
        """Up to a batch of waiting events; one redelivered, retried or crash-counted goes alone, so a
        poison event cannot take its batch-mates down twice."""
        batch: list[Request] = []
        while self.waiting and len(batch) < self.size:
            request = self.waiting[0]
            if not celery.reserved(request) or request.revoked():
                self.waiting.popleft()  # its connection closed: the broker redelivers it
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
        job = object()
        self.jobs.add(job)

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

        def finished(results: list[Traced]) -> None:
            done()
            settle = iter(results)
            each(lambda request: request.on_success(next(settle)))
            self._flush()

        def lost(exc_info: Any) -> None:
            """Died, terminated or past the hard limit. In a batch only a revoked event fails; the
            others are requeued and come back alone (the inbox skips what committed)."""
            done()
            if len(batch) == 1:
                each(lambda request: request.on_failure(exc_info))
            else:
                each(lambda request: _requeue_unless_revoked(request, exc_info))
            self._flush()

        def timed_out(soft: bool, timeout: float) -> None:
            if soft:
                each(lambda request: request.on_timeout(soft, timeout))

        task = batch[0].task
        result = billiard.apply(
            self.pool,
            run_batch,
            ([_item(request) for request in batch],),
            accepted=accepted,
            finished=finished,
            lost=lost,
            timed_out=timed_out,
            soft_timeout=task.soft_time_limit,
            timeout=task.time_limit,
            correlation_id=batch[0].id,
        )
        for request in batch:
            celery.remember_job(request, result)


def _requeue_unless_revoked(request: Request, exc_info: Any) -> None:
    if celery.revoked(request.id):
        request.on_failure(exc_info)
    else:
        request.reject(requeue=True)


def _item(request: Request) -> Item:
    attempt = int(request.request_dict.get("retries") or 0) + 1
    return (request.name, request.body, request.content_type, request.content_encoding, attempt)


def run_batch(items: list[Item]) -> list[Traced]:
    """In a pool process: `handling.outcomes`, reported as Celery's tracer reports a task's."""
    app = current_app
    metrics.BATCH_SIZE.labels(service=app.conf.bus_service).observe(len(items))
    accept = prepare_accept_content(app.conf.accept_content)
    deliveries = []
    for name, body, content_type, content_encoding, attempt in items:
        args, kwargs, _ = loads(body, content_type, content_encoding, accept=accept)  # decoded before
        deliveries.append(Delivery(name, tuple(args), kwargs, attempt))
    db.close_old_connections()  # what the task_prerun/postrun handlers do for a single task
    started = monotonic()
    results = outcomes(app.tasks[items[0][0]].registry, deliveries)  # type: ignore[attr-defined]
    runtime = (monotonic() - started) / len(items)
    db.close_old_connections()
    return [
        (1, celery.pickleable_failure(result), runtime)
        if isinstance(result, Exception)
        else (0, result, runtime)
        for result in results
    ]
