"""The Celery task generated for each event type a service handles: a thin adapter over
`handling.parse` and `handling.handle` that turns failures into decisions (`failures`)."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from django.conf import settings

from common.bus.consume.failures import Park, RetryLater, is_transient, qualified_name, retry_delay
from common.bus.consume.handlers import HandlerRegistry
from common.bus.consume.handling import InvalidMessage, handle, parse


class EventTask(Task[Any, str]):
    Request = "common.bus.consume.request:EventRequest"
    Strategy = "common.bus.consume.batching:strategy"
    registry: HandlerRegistry  # set per generated task
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    throws = (Park, RetryLater)  # expected outcomes: logged without a traceback by Celery


def handle_message(
    registry: HandlerRegistry,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    task_name: str,
    attempt: int,
) -> str:
    """Handle one delivery; raise `Park` or `RetryLater` to say what should become of it."""
    try:
        envelope, subscription, event = parse(registry, args, kwargs, task_name=task_name)
    except InvalidMessage as exc:
        raise Park("invalid", str(exc), "InvalidMessage") from None
    try:
        handled = handle(envelope, subscription, event, service=registry.service)
    except Exception as exc:
        if not is_transient(exc, subscription.transient):
            raise
        cause = f"{type(exc).__name__}: {exc}"
        if attempt >= settings.BUS_RETRY_MAX_ATTEMPTS:
            raise Park(
                "retries-exhausted", f"gave up after {attempt} attempts: {cause}", qualified_name(exc)
            ) from exc
        delay = retry_delay(
            attempt, base=settings.BUS_RETRY_BASE_SECONDS, maximum=settings.BUS_RETRY_MAX_DELAY_SECONDS
        )
        raise RetryLater(delay, attempt, cause) from None
    return "handled" if handled else "duplicate"


def register_event_task(app: Celery, registry: HandlerRegistry, event_type: str) -> None:
    def consume(self: Task[Any, str], *args: Any, **kwargs: Any) -> str:
        attempt = int(self.request.retries or 0) + 1
        return handle_message(registry, args, kwargs, task_name=event_type, attempt=attempt)

    app.task(name=event_type, bind=True, base=EventTask, registry=registry)(consume)
