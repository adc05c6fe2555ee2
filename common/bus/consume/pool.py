"""The prefork pool, with one upstream crash fixed: `worker_pool = "common.bus.consume.pool:TaskPool"`.

Celery 5.7.0 with kombu 5.7.0 kills the worker ("Unrecoverable error: ValueError('file descriptor is
None')", compare celery/celery#9250) when it reconnects to the broker while a pool process that has
just died is still in the pool: re-registering the pool with the event loop tracks the dead
process's sentinel, which Celery already untracked (set to None). kombu now raises ValueError for a
None file descriptor; Celery only catches AttributeError there. A process whose sentinel was
untracked has exited: the pool's maintenance (on its exit event, and every few seconds) replaces
it, so it is skipped rather than tracked. `tests/unit/common/test_celery_pool.py` pins the upstream
behaviour, so an upgrade that fixes it fails a test and this module can go.
"""

from __future__ import annotations

from typing import Any

from celery.concurrency import asynpool, prefork


class AsynPool(asynpool.AsynPool):
    def _track_child_process(self, proc: Any, hub: Any) -> None:
        if hasattr(proc, "_sentinel_poll") and proc._sentinel_poll is None:
            return  # exited and untracked: maintain_pool replaces it
        super()._track_child_process(proc, hub)  # type: ignore[misc]


class TaskPool(prefork.TaskPool):
    Pool = AsynPool
