"""The Celery task generated for each event type a service handles: a thin adapter over
`handling.outcomes` (Celery's documented `Task` and `Request` extension points)."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task

from common.bus.consume.failures import Park, RetryLater
from common.bus.consume.handlers import HandlerRegistry
from common.bus.consume.handling import Delivery, outcomes


class EventTask(Task[Any, str]):
    Request = "common.bus.consume.request:EventRequest"
    registry: HandlerRegistry  # set per generated task
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    throws = (Park, RetryLater)  # expected outcomes: logged without a traceback by Celery


class BatchedEventTask(EventTask):
    Strategy = "common.bus.consume.batching:strategy"


def register_event_task(app: Celery, registry: HandlerRegistry, event_type: str, *, batching: bool) -> None:
    def consume(self: Task[Any, str], *args: Any, **kwargs: Any) -> str:
        attempt = int(self.request.retries or 0) + 1
        outcome = outcomes(registry, [Delivery(event_type, args, kwargs, attempt)])[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    base = BatchedEventTask if batching else EventTask
    app.task(name=event_type, bind=True, base=base, registry=registry)(consume)
