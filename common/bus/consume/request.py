"""The main-process side of a failed attempt: it holds the raw message, so it retries or parks it.

The pool process decides (`RetryLater`, `Park`, or any other exception = park); this carries it out:
publish the copy (confirmed), then ack the original. If the copy cannot be published the original is
requeued instead; nothing is dropped. A pool process that died handling the event sends it back
counting the crash, and parks it past `BUS_DELIVERY_LIMIT` crashes (where Celery requeues it, and
only the broker's delivery limit, which also counts returns of messages never started, bounds it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from billiard.einfo import ExceptionInfo, ExceptionWithTraceback  # type: ignore[attr-defined]
from celery.exceptions import Terminated, WorkerLostError
from celery.worker.request import Request
from kombu import Producer

from common.bus import metrics
from common.bus.amqp.wire import TaskMessage
from common.bus.consume import deadletters
from common.bus.consume.failures import Park, RetryLater
from common.bus.internals import celery
from common.observability.context import message_context

log = logging.getLogger("common.bus.consume.worker")
PASS_THROUGH = (SystemExit, KeyboardInterrupt, MemoryError)  # Celery's handling
Copy = Callable[[Producer, str, TaskMessage], Any]  # publishes a copy: (producer, service, raw message)


class EventRequest(Request):
    def on_failure(
        self, exc_info: ExceptionInfo, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        if celery.cold_shutdown():
            # whatever the attempt's outcome, the message comes back after the restart (no retry or
            # dead letter is published now; rejecting it would make a dead letter without a reason)
            celery.task_ready(self)
            self.reject(requeue=True)
            return
        revoked = isinstance(exc, Terminated) and celery.revoked(self.id)
        if isinstance(exc, PASS_THROUGH) or (isinstance(exc, Terminated) and not revoked):
            super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
            return
        if revoked:  # an operator's revoke --terminate: parked with why, so it can be replayed
            exc = Park(
                "terminated", f"terminated while running ({exc}) by an operator's revoke", "Terminated"
            )
        celery.task_ready(self)
        if isinstance(exc, WorkerLostError):  # its process died: a segfault, OOM, SIGKILL, time limit
            crashes = int(self.message.headers.get(deadletters.H_CRASHES) or 0) + 1
            limit = int(self.task.app.conf.bus_delivery_limit)
            if crashes <= limit:
                copy = partial(deadletters.redeliver_after_crash, crashes=crashes)
                self._send_back(copy, f"crash {crashes}, {limit} allowed: {exc}", exc_info, retried=False)
                return
            message = f"the worker's process died handling it {crashes} time(s): {exc}"
            traceback = str(exc_info.traceback or "")
            failure = deadletters.Failure("crashed", "WorkerLostError", message, traceback, crashes)
        elif isinstance(exc, RetryLater):
            copy = partial(deadletters.schedule_retry, delay=exc.delay, attempt=exc.attempt, error=exc.cause)
            self._send_back(copy, str(exc), exc_info, retried=True)
            return
        else:
            failure = self._failure(exc or RuntimeError("unknown failure"), exc_info)
        parked_as = self._copy(partial(deadletters.park, failure=failure))
        if parked_as is None:
            return
        metrics.DEAD_LETTERED.labels(**self._labels(), kind=failure.kind).inc()
        with message_context(self.message.headers):
            log.error("%s %s parked as %s: %s", self.name, self.id, parked_as, failure.message)
        if send_failed_event:
            exception = f"{failure.exception_type}: {failure.message}"[:1000]
            self.send_event("task-failed", exception=exception, traceback=exc_info.traceback)

    def _send_back(self, copy: Copy, note: str, exc_info: ExceptionInfo, *, retried: bool) -> None:
        if self._copy(copy) is None:
            return
        if retried:  # a crash's redelivery is no retry
            metrics.RETRIED.labels(**self._labels()).inc()
        with message_context(self.message.headers):
            log.warning("%s %s sent back: %s", self.name, self.id, note)
        self.send_event("task-retried", exception=note[:1000], traceback=exc_info.traceback)

    def _copy(self, copy: Copy) -> Any:
        """Publish the copy (confirmed), then ack; requeue if it cannot be. None if requeued."""
        conf = self.task.app.conf
        try:
            with deadletters.confirmed_producer(conf.broker_url) as producer:
                result = copy(producer, conf.bus_service, TaskMessage.of(self.message))
        except Exception:
            log.exception("could not retry or park %s %s; requeueing it", self.name, self.id)
            self.reject(requeue=True)
            return None
        self.acknowledge()
        return result if result is not None else ""

    def _labels(self) -> dict[str, str]:
        return {"service": self.task.app.conf.bus_service, "type": self.name}

    def _failure(self, exc: BaseException, exc_info: ExceptionInfo) -> deadletters.Failure:
        attempts = int(self.message.headers.get("retries") or 0) + 1
        if isinstance(exc, Park):
            traceback = str(exc_info.traceback or "") if exc.kind != "invalid" else ""
            return deadletters.Failure(exc.kind, exc.exception_type, exc.cause, traceback, attempts)
        exc_type = getattr(exc, "exc_cls_name", None) or type(exc).__qualname__
        module = getattr(exc, "exc_module", None) or type(exc).__module__
        message = str(exc) or repr(exc)
        return deadletters.Failure(
            "error", f"{module}.{exc_type}", message, exc_info.traceback or "", attempts
        )
