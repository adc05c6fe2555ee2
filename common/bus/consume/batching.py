"""Consumption in batches (a fast path: `BUS_FAST_PATHS`, `BUS_CONSUMER_BATCH_SIZE`): events that
arrive together (read back to back), or that wait while every pool process is busy, are handed to
one pool process together and handled in one transaction (one inbox statement, one commit).

Why: on the success path most of what a consumer spent per event was transaction overhead and
Celery's per-task dispatch to the pool. Nothing waits for a batch to fill: an event is handed over
as soon as nothing more is ready to read and a process is free, so batching adds no latency. Each
event keeps its Celery request: acks, retries, dead letters, Flower's task events and a lost worker
stay per event, settled as Celery settles a job of one.
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
Outcome = tuple[int, Any, float]  # as Celery's tracer reports a task: (failed, result or einfo, runtime)


def strategy(task: Task[Any, Any], app: Celery, consumer: Any, **options: Any) -> Any:
    """Celery's default strategy, handing each request to the consumer's batcher, not the pool."""
    batcher = getattr(consumer, "bus_batcher", None)
    if batcher is None:  # one per consumer, for every event type, kept across reconnections
        size = int(app.conf.bus_batch_size)
        batcher = consumer.bus_batcher = Batcher(consumer.pool, size, partial(kombu.bytes_waiting, consumer))
        celery.on_every_loop(consumer, batcher.tick)
    return celery.strategy_handing_to(batcher.submit, task, app, consumer, **options)


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
        """The consumer lost the broker connection and flushed the pool: billiard dropped every job
        no process had accepted, without calling its callbacks (their messages come back from the
        broker). Counted still, they would keep the batcher from ever handing over again."""
        self.jobs &= self.accepted

    def _flush(self) -> None:
        if celery.shutting_down():
            return  # what waits stays unacked, and the broker redelivers it
        while self.waiting and len(self.jobs) < (self.pool.limit or 1):
            batch = self._take()
            if batch:
                self._apply(batch)

    def _take(self) -> list[Request]:
        """The next job: waiting events up to the batch size. An event that was redelivered, came
        back after a crash, or is a retry goes alone, so a poison event cannot take others down
        with it twice or roll back their batch again."""
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
        """One pool job; its outcome is settled per request, as Celery does for a job of one."""
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

        def finished(results: list[Outcome]) -> None:
            done()
            settle = iter(results)
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
            """The soft limit is a warning; the hard one ends the job, which `lost` settles."""
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


def run_batch(items: list[Item]) -> list[Outcome]:
    """In a pool process: the events' outcomes (`handling.outcomes`), reported as Celery's tracer
    reports a task's, so the main process settles each as it settles a task."""
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
