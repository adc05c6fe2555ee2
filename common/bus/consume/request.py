"""The main-process side of a failed attempt: it holds the raw message, so it retries or parks it.

The pool process decides (`RetryLater`, `Park`, or any other exception = park); this carries it out:
publish the copy (confirmed), then ack the original. If the copy cannot be published the original is
requeued instead; nothing is dropped. A pool process that died handling the event sends it back
counting the crash, and parks it past `BUS_DELIVERY_LIMIT` crashes (where Celery requeues it, and
only the broker's delivery limit, which also counts returns of messages never started, bounds it).
"""

from __future__ import annotations

import logging

from billiard.einfo import ExceptionInfo, ExceptionWithTraceback  # type: ignore[attr-defined]
from celery.exceptions import Terminated, WorkerLostError
from celery.worker import state
from celery.worker.request import Request, task_ready  # type: ignore[attr-defined]

from common.bus import metrics
from common.bus.amqp.wire import TaskMessage
from common.bus.consume import deadletters
from common.bus.consume.failures import Park, RetryLater
from common.observability.context import message_context

log = logging.getLogger("common.bus.consume.worker")
PASS_THROUGH = (SystemExit, KeyboardInterrupt, MemoryError)  # Celery's handling


class EventRequest(Request):
    def on_failure(
        self, exc_info: ExceptionInfo, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        if getattr(state, "should_terminate", None) not in (None, False):  # (typed None in the stubs)
            # a cold shutdown: whatever the attempt's outcome, the message comes back after the
            # restart (no retry or dead letter is published now; a dead letter without its reason
            # is what rejecting it would make)
            task_ready(self)
            self.reject(requeue=True)
            return
        if isinstance(exc, WorkerLostError):
            self._after_crash(exc, exc_info)
            return
        revoked = isinstance(exc, Terminated) and self.id in state.revoked
        if isinstance(exc, PASS_THROUGH) or (isinstance(exc, Terminated) and not revoked):
            super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
            return
        if revoked:  # an operator's revoke --terminate: parked with why, so it can be replayed
            exc = Park(
                "terminated", f"terminated while running ({exc}) by an operator's revoke", "Terminated"
            )
        task_ready(self)
        service = self.task.app.conf.bus_service
        raw = TaskMessage.of(self.message)
        try:
            with deadletters.confirmed_producer(self.task.app.conf.broker_url) as producer:
                if isinstance(exc, RetryLater):
                    deadletters.schedule_retry(
                        producer, service, raw, delay=exc.delay, attempt=exc.attempt, error=exc.cause
                    )
                else:
                    failure = self._failure(exc or RuntimeError("unknown failure"), exc_info)
                    parked_as = deadletters.park(producer, service, raw, failure)
        except Exception:
            log.exception("could not retry or park %s %s; requeueing it", self.name, self.id)
            self.reject(requeue=True)
            return
        self.acknowledge()
        labels = {"service": service, "type": self.name}
        with message_context(raw.headers):
            if isinstance(exc, RetryLater):
                metrics.RETRIED.labels(**labels).inc()
                log.warning("%s %s: %s", self.name, self.id, exc)
                self.send_event("task-retried", exception=str(exc), traceback=exc_info.traceback)
                return
            metrics.DEAD_LETTERED.labels(**labels, kind=failure.kind).inc()
            log.error(
                "%s %s parked in the dead-letter queue as %s: %s",
                self.name,
                self.id,
                parked_as,
                failure.message,
            )
        if send_failed_event:
            self.send_event(
                "task-failed",
                exception=f"{failure.exception_type}: {failure.message}"[:1000],
                traceback=exc_info.traceback,
            )

    def _after_crash(self, exc: WorkerLostError, exc_info: ExceptionInfo) -> None:
        """Its pool process died (a segfault, the OOM killer, SIGKILL, the hard time limit)."""
        task_ready(self)
        service = self.task.app.conf.bus_service
        raw = TaskMessage.of(self.message)
        crashes = int(raw.headers.get(deadletters.H_CRASHES) or 0) + 1
        limit = int(self.task.app.conf.bus_delivery_limit)
        failure = deadletters.Failure(
            "crashed",
            "WorkerLostError",
            f"the worker's process died handling it {crashes} time(s): {exc}",
            str(exc_info.traceback or ""),
            attempts=crashes,
        )
        try:
            with deadletters.confirmed_producer(self.task.app.conf.broker_url) as producer:
                if crashes > limit:
                    parked_as = deadletters.park(producer, service, raw, failure)
                else:
                    deadletters.redeliver_after_crash(producer, service, raw, crashes=crashes)
        except Exception:
            log.exception("could not send %s %s back after a crash; requeueing it", self.name, self.id)
            self.reject(requeue=True)
            return
        self.acknowledge()
        with message_context(raw.headers):
            if crashes > limit:
                metrics.DEAD_LETTERED.labels(service=service, type=self.name, kind="crashed").inc()
                log.error("%s %s parked as %s: %s", self.name, self.id, parked_as, failure.message)
                self.send_event("task-failed", exception=f"WorkerLostError: {failure.message}"[:1000])
            else:
                log.warning(
                    "%s %s sent back (crash %d, %d allowed): %s", self.name, self.id, crashes, limit, exc
                )
                self.send_event("task-retried", exception=f"WorkerLostError: {exc}"[:1000])

    def _failure(self, exc: BaseException, exc_info: ExceptionInfo) -> deadletters.Failure:
        attempts = int(self.message.headers.get("retries") or 0) + 1
        if isinstance(exc, Park):
            return deadletters.Failure(
                kind=exc.kind,
                exception_type=exc.exception_type,
                message=exc.cause,
                traceback=str(exc_info.traceback or "") if exc.kind != "invalid" else "",
                attempts=attempts,
            )
        exc_type = getattr(exc, "exc_cls_name", None) or type(exc).__qualname__
        module = getattr(exc, "exc_module", None) or type(exc).__module__
        return deadletters.Failure(
            kind="error",
            exception_type=f"{module}.{exc_type}",
            message=str(exc) or repr(exc),
            traceback=exc_info.traceback or "",
            attempts=attempts,
        )
