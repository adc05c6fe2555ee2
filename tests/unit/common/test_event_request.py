"""What the worker's main process does with a failed attempt, run on a Celery request directly."""

from __future__ import annotations

import pytest
from billiard.einfo import ExceptionInfo
from celery import Celery
from celery.contrib.testing.mocks import TaskMessage
from celery.worker import state

from common.bus.consume.failures import RetryLater
from common.bus.consume.request import EventRequest


@pytest.fixture
def app() -> Celery:
    app = Celery("t", broker="memory://", set_as_current=False)
    app.conf.bus_service = "orders"

    @app.task(name="user.created", acks_late=True, bind=True)
    def consume(self: object) -> None:
        raise AssertionError("not run here")

    return app


def failed_with(exc: BaseException) -> ExceptionInfo:
    try:
        raise exc
    except type(exc):
        return ExceptionInfo()


def test_a_retry_decided_during_a_cold_shutdown_is_requeued_not_dead_lettered(
    app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an attempt that failed transiently while the worker is being shut down cold
    message = TaskMessage("user.created", args=({},))
    settled: list[tuple[str, bool]] = []
    request = EventRequest(
        message,
        app=app,
        task=app.tasks["user.created"],
        on_ack=lambda *_: settled.append(("ack", False)),
        on_reject=lambda logger, errors, requeue: settled.append(("reject", requeue)),
    )
    monkeypatch.setattr(state, "should_terminate", True)

    # when the main process settles it
    request.on_failure(failed_with(RetryLater(2, 1, "ConnectionError: gone")))

    # then the message goes back to the queue (redelivered after the restart), not to the DLX
    assert settled == [("reject", True)]
