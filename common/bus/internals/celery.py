"""Celery worker internals.

Fast path (`BUS_FAST_PATHS`), consumer batching (`consume/batching.py`): the consumer's strategy
hands requests to the batcher instead of the pool, the batcher runs on the consumer's event loop,
reads the worker's reserved and revoked state, and leaves a job's result on each request so a
revoke with terminate finds the process. `reuse_db_connections` keeps Django's connections across
tasks (Celery's Django fix-up otherwise opens one per event).

Always on: the crash fix below (`worker_pool = "common.bus.internals.celery:TaskPool"`), and what
`EventRequest` needs to settle a failure itself: `task_ready` and the shutdown state.

The pool: Celery 5.7.0 with kombu 5.7.0 kills the worker ("Unrecoverable error: ValueError('file
descriptor is None')", compare celery/celery#9250) when it reconnects while a pool process that has
just died is still in the pool: re-registering the pool with the event loop tracks the dead
process's sentinel, which Celery already untracked (set to None). A process whose sentinel was
untracked has exited, and the pool's maintenance replaces it, so it is skipped rather than tracked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from weakref import ref

from billiard.einfo import ExceptionInfo
from celery import Celery, Task
from celery.concurrency import asynpool, prefork
from celery.utils.serialization import get_pickleable_etype, get_pickleable_exception
from celery.worker import state
from celery.worker.request import Request, task_ready  # type: ignore[attr-defined]
from celery.worker.strategy import default

__all__ = ["task_ready"]


class AsynPool(asynpool.AsynPool):
    def _track_child_process(self, proc: Any, hub: Any) -> None:
        if hasattr(proc, "_sentinel_poll") and proc._sentinel_poll is None:
            return  # exited and untracked: maintain_pool replaces it
        super()._track_child_process(proc, hub)  # type: ignore[misc]


class TaskPool(prefork.TaskPool):
    Pool = AsynPool


def cold_shutdown() -> bool:
    return state.should_terminate not in (None, False)


def shutting_down() -> bool:
    return state.should_stop not in (None, False) or cold_shutdown()


def revoked(task_id: str) -> bool:
    return task_id in state.revoked


def reserved(request: Request) -> bool:
    """Still held for this worker: false once its connection closed (it cannot be acked then)."""
    return request in state.reserved_requests


class _Handing:
    """The consumer as the default strategy sees it, with `on_task_request` replaced."""

    def __init__(self, consumer: Any, on_task_request: Callable[[Request], None]) -> None:
        self._consumer = consumer
        self.on_task_request = on_task_request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


def strategy_handing_to(
    on_task_request: Callable[[Request], None],
    task: Task[Any, Any],
    app: Celery,
    consumer: Any,
    **options: Any,
) -> Any:
    """Celery's default strategy (ack, revoke, rate limits, events), handing each request to
    `on_task_request` instead of the pool."""
    return default(task, app, _Handing(consumer, on_task_request), **options)


def on_every_loop(consumer: Any, callback: Callable[[], None]) -> None:
    """Call `callback` after each iteration of the consumer's event loop (after each read)."""
    if consumer.hub is not None:
        consumer.hub.on_tick.add(callback)


def remember_job(request: Request, result: Any) -> None:
    """Where a revoke with terminate looks for the process running the request."""
    request._apply_result = ref(result)  # type: ignore[attr-defined]


def pickleable_failure(exc: Exception) -> ExceptionInfo:
    """A pool process's exception as Celery's tracer sends it to the main process. A decision that
    was made, not raised (a Park or RetryLater from `outcomes`), is raised here for a traceback:
    billiard's ExceptionInfo needs one."""
    if exc.__traceback__ is None:
        try:
            raise exc
        except Exception as raised:  # noqa: BLE001 - it is `exc`, now with a traceback
            exc = raised
    pickleable = get_pickleable_exception(exc)
    return ExceptionInfo((get_pickleable_etype(type(exc)), pickleable, exc.__traceback__))


def reuse_db_connections(app: Celery) -> None:
    """Turn off the Django fix-up's closing of every connection around each task: the worker closes
    only broken or old ones (`close_old_connections`), as Django does between requests."""
    app.conf["CELERY_DB_REUSE_MAX"] = 10**9
