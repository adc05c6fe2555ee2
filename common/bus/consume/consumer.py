"""The worker's consumer, hardened: stock Celery drops a body it cannot decode, crashes on JSON of
the wrong shape and rejects unknown tasks silently; here each is parked with its reason.
"""

from __future__ import annotations

import logging
from typing import Any

from amqp.exceptions import PreconditionFailed
from celery.worker.consumer import Consumer
from django.conf import settings
from kombu.exceptions import ContentDisallowed
from vine import promise

from common.bus import metrics
from common.bus.amqp import topology
from common.bus.amqp.wire import TaskMessage
from common.bus.consume import deadletters
from common.bus.consume.deadletters import Failure
from common.contracts.base import producer_of
from common.observability.context import message_context

log = logging.getLogger("common.bus.consume.worker")


def body_problem(message: Any) -> Failure | None:
    """Why this message is not a task message we could run, or None."""
    headers = message.headers or {}
    if "task" not in headers or "id" not in headers:
        return Failure("not-a-task", "NotATaskMessage", "no 'task'/'id' headers: not a Celery task message")
    try:
        payload = message.decode()  # cached: the strategy reuses it
    except ContentDisallowed as exc:
        reason = f"content type {message.content_type!r} refused (JSON only): {exc}"
        return Failure("invalid", "ContentDisallowed", reason)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the reason
        return Failure("undecodable", type(exc).__name__, f"body is not valid JSON: {exc}")
    shape = [type(part) for part in payload] if isinstance(payload, list) and len(payload) == 3 else None
    if shape != [list, dict, dict]:
        reason = f"body must be a JSON array [args, kwargs, embed], got {str(payload)[:200]!r}"
        return Failure("invalid", "InvalidTaskBody", reason)
    return None


def producer_problem(message: Any, *, users: dict[str, str], own: str) -> Failure | None:
    """Why this event did not come from its producer, or None. RabbitMQ guarantees a user_id is the
    publishing connection's user; the contract names who may produce the type. A copy this service
    made itself (a retry, a replay) carries its own user."""
    task = str((message.headers or {}).get("task") or "")
    producer = producer_of(task)
    if producer is None:
        return None  # not a known event: refused as such later, with its own reason
    expected = users.get(producer, producer)
    user_id = (message.properties or {}).get("user_id")
    if user_id in (expected, own):
        return None
    reason = f"{task} is produced by {producer} (broker user {expected!r}), not by user_id {user_id!r}"
    return Failure("forged", "UnauthenticatedProducer", reason)


class EventConsumer(Consumer):
    def start(self) -> None:
        try:
            super().start()
        except PreconditionFailed as exc:  # the queue of an older declaration: say the way out
            raise topology.QueueOutOfDate(self.app.conf.bus_service, exc.reply_text) from None

    def create_task_handler(self, promise: Any = promise) -> Any:
        handle = super().create_task_handler(promise)

        users, own = dict(settings.BUS_BROKER_USERS), settings.BUS_OWN_BROKER_USER

        def on_task_received(message: Any) -> None:
            failure = body_problem(message) or producer_problem(message, users=users, own=own)
            if failure is not None:
                self._park(message, failure)
                return
            handle(message)

        return on_task_received

    def on_close(self) -> None:
        # The task-event connection is replaced as the consumer reconnects, after a graceful close
        # that a dead link never answers (the worker waited there for good, then for two read
        # timeouts while its new consumer connection went unserved); it is dropped now instead.
        events = getattr(self, "event_dispatcher", None)
        if events is not None and events.connection is not None:
            events.connection.collect()
        super().on_close()  # flushes the pool: jobs no process accepted are dropped
        batcher = getattr(self, "bus_batcher", None)
        if batcher is not None:
            batcher.connection_closed()

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        if isinstance(exc, ContentDisallowed):  # e.g. compressed (refused before it is inflated)
            self._park(message, Failure("invalid", "ContentDisallowed", str(exc)))
            return
        self._park(message, Failure("undecodable", type(exc).__name__, str(exc)))

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._park(message, Failure("not-a-task", "NotATaskMessage", "not a Celery task message"))

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        task = (message.headers or {}).get("task")
        reason = f"{self.app.conf.bus_service} does not handle events of type {task!r}"
        self._park(message, Failure("unknown-task", "NotRegistered", reason))

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._park(message, Failure("invalid", type(exc).__name__, str(exc)))

    def _park(self, message: Any, failure: Failure) -> None:
        service = self.app.conf.bus_service
        try:
            with deadletters.confirmed_producer(self.app.conf.broker_url) as producer:
                parked_as = deadletters.park(producer, service, TaskMessage.of(message), failure)
        except Exception:
            log.exception("could not park a bad message; requeueing it")
            message.reject_log_error(log, self._connection_errors(), requeue=True)
            return
        message.ack_log_error(log, self._connection_errors())
        headers = dict(message.headers or {})
        task = str(headers.get("task") or "")
        event_type = task if task in self.app.tasks else "unknown"  # no label per garbage name
        metrics.DEAD_LETTERED.labels(service=service, type=event_type, kind=failure.kind).inc()
        with message_context(headers):
            log.error("parked a message in the dead-letter queue as %s: %s", parked_as, failure.message)

    def _connection_errors(self) -> tuple[type[BaseException], ...]:
        return tuple(getattr(self, "connection_errors", ()))
