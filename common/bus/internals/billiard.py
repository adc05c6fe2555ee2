"""billiard internals. Fast path (`BUS_FAST_PATHS`), consumer batching: a batch is one pool job,
submitted with the callbacks Celery's own requests use, so each of its events is settled as Celery
settles a job of one (started, finished, lost, timed out)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def apply(
    pool: Any,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    *,
    accepted: Callable[[str, float], None],
    finished: Callable[[Any], None],
    lost: Callable[[Any], None],
    timed_out: Callable[..., None],
    soft_timeout: float | None,
    timeout: float | None,
    correlation_id: str,
) -> Any:
    """Run `function(*args)` in a pool process; billiard calls `timed_out(soft=, timeout=)`."""
    return pool.apply_async(
        function,
        args=args,
        accept_callback=accepted,
        timeout_callback=timed_out,
        callback=finished,
        error_callback=lost,
        soft_timeout=soft_timeout,
        timeout=timeout,
        correlation_id=correlation_id,
    )
