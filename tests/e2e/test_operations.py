"""What operators see of a running suite: health and readiness, metrics that move by the right
amounts, and log lines that one correlation id ties together across processes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from common.contracts import Envelope, UserCreated
from tests.support.metrics import Sample, value
from tests.support.polling import wait_for
from tests.support.suite import SERVICES, Suite


def metrics(suite: Suite, process: str) -> Sample:
    return suite.metrics(process)


@pytest.mark.parametrize("service", SERVICES)
def test_health_and_readiness_of_every_process(suite: Suite, service: str) -> None:
    for path, expected in (("/healthz", "ok"), ("/readyz", "ready")):
        status, body = suite.call("GET", service, path)
        assert status == 200 and body["status"] == expected
    for process in (f"{service}-worker", f"{service}-relay"):
        assert suite.http(process, "/healthz") == (200, "ok\n")
        assert suite.http(process, "/readyz") == (200, "ready\n")


def moved(
    delta: Callable[..., float], process: str, name: str, labels: dict[str, str], expected: float
) -> bool:
    return delta(process, name, **labels) == expected


def test_metrics_move_by_the_right_amounts(suite: Suite) -> None:
    watched = ("users-relay", "orders-relay", "orders-worker", "notifications-worker")
    before = {p: metrics(suite, p) for p in watched}

    # when one user signs up and places one order
    _, _, token = suite.sign_up("metrics")

    suite.place_order(token)

    def delta(process: str, name: str, **labels: str) -> float:
        return value(metrics(suite, process), name, **labels) - value(before[process], name, **labels)

    # then each counter moved by exactly what happened
    expectations = [
        ("users-relay", "suite_events_published_total", {"service": "users", "type": "user.created"}, 1),
        ("orders-relay", "suite_events_published_total", {"service": "orders", "type": "order.placed"}, 1),
        ("orders-worker", "suite_events_consumed_total", {"service": "orders", "type": "user.created"}, 1),
        (
            "notifications-worker",
            "suite_events_consumed_total",
            {"service": "notifications", "type": "user.created"},
            1,
        ),
        (
            "notifications-worker",
            "suite_events_consumed_total",
            {"service": "notifications", "type": "order.placed"},
            1,
        ),
        (
            "notifications-worker",
            "suite_handler_duration_seconds_count",
            {"service": "notifications", "type": "order.placed"},
            1,
        ),
    ]
    for process, name, labels, expected in expectations:
        wait_for(
            lambda p=process, n=name, lb=labels, e=expected: delta(p, n, **lb) == e,  # type: ignore[misc]
            what=f"{name}{labels} +{expected} on {process}",
        )
    after = metrics(suite, "orders-worker")
    assert value(after, "suite_outbox_pending", service="orders") == 0
    assert value(after, "suite_dead_letter_queue_depth", service="orders") == 0

    # and a duplicate delivery counts as a duplicate, not as another consumption
    consumed = value(
        metrics(suite, "orders-worker"), "suite_events_consumed_total", service="orders", type="user.created"
    )
    event = UserCreated(user_id=uuid.uuid4(), email="dup@example.com", first_name="D", last_name="U")
    envelope = Envelope.wrap(event, producer="users", aggregate_id=str(event.user_id), aggregate_version=1)
    duplicates = value(
        metrics(suite, "orders-worker"),
        "suite_events_duplicates_total",
        service="orders",
        type="user.created",
    )
    suite.publish_event(envelope)
    suite.publish_event(envelope)
    wait_for(
        lambda: (
            value(
                metrics(suite, "orders-worker"),
                "suite_events_duplicates_total",
                service="orders",
                type="user.created",
            )
            == duplicates + 1
        ),
        what="one duplicate",
    )
    assert (
        value(
            metrics(suite, "orders-worker"),
            "suite_events_consumed_total",
            service="orders",
            type="user.created",
        )
        == consumed + 1
    )


def json_lines(suite: Suite) -> list[dict[str, Any]]:
    lines = []
    for process in suite.processes.values():
        for raw in process.log().splitlines():
            if raw.startswith("{"):
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    continue
    return lines


def test_one_sign_up_is_one_correlation_id_across_every_log_line_it_causes(suite: Suite) -> None:
    # given a sign-up that carries its own correlation id
    correlation = str(uuid.uuid4())
    email = f"corr-{uuid.uuid4().hex[:8]}@example.com"
    status, user = suite.call_with_headers(
        "POST",
        "users",
        "/api/users/",
        {"email": email, "password": "S3cure-passphrase", "first_name": "C", "last_name": "D"},
        headers={"X-Correlation-ID": correlation},
    )
    assert status == 201
    [(event_id,)] = suite.sql(
        "users", "SELECT event_id FROM bus_outboxmessage WHERE aggregate_id = %s", (user["id"],)
    )
    event_id = str(event_id)

    # when it has gone through every service
    def traced() -> list[dict[str, Any]] | None:
        mine = [line for line in json_lines(suite) if line.get("correlation_id") == correlation]
        processes = {line["process"].split(":")[0] + "/" + line["service"] for line in mine}
        wanted = {"api/users", "relay/users", "worker/orders", "worker/notifications"}
        return mine if wanted <= processes else None

    mine = wait_for(traced, what="log lines of the sign-up in the API, relay and both workers")

    # then they say what happened, and every line about its event carries the same correlation id
    messages = [line["message"] for line in mine]
    assert any(m.startswith("POST /api/users/ 201") for m in messages)
    assert f"published user.created {event_id}" in messages
    assert (
        sum(
            m == f"handled user.created {event_id}" or m.startswith(f"handled user.created {event_id} ")
            for m in messages
        )
        == 2
    )
    about_the_event = [
        line
        for line in json_lines(suite)
        if line.get("event_id") == event_id or event_id in line.get("message", "")
    ]
    assert about_the_event
    assert {line.get("correlation_id") for line in about_the_event} == {correlation}
    for line in about_the_event:
        assert {"ts", "level", "logger", "message", "service", "process"} <= set(line)
