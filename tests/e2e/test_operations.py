"""What operators see of a running suite: health and readiness, metrics that move by the right
amounts, and log lines that one correlation id ties together across processes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from common.contracts import Envelope, UserCreated
from tests.support import databases
from tests.support.metrics import Sample, counter, value
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
    watched = ("users-api", "orders-api", "users-relay", "orders-worker", "notifications-worker")
    before = {p: metrics(suite, p) for p in watched}

    # when one user signs up and places one order
    _, _, token = suite.sign_up("metrics")

    suite.place_order(token)

    def delta(process: str, name: str, **labels: str) -> float:
        return counter(metrics(suite, process), name, **labels) - counter(before[process], name, **labels)

    # then each counter moved by exactly what happened: the APIs published their events on commit
    expectations = [
        ("users-api", "suite_events_published_total", {"service": "users", "type": "user.created"}, 1),
        ("orders-api", "suite_events_published_total", {"service": "orders", "type": "order.placed"}, 1),
        ("users-relay", "suite_events_published_total", {"service": "users", "type": "user.created"}, 0),
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
    consumed = counter(
        metrics(suite, "orders-worker"), "suite_events_consumed_total", service="orders", type="user.created"
    )
    event = UserCreated(user_id=uuid.uuid4(), email="dup@example.com", first_name="D", last_name="U")
    envelope = Envelope.wrap(event, producer="users", aggregate_id=str(event.user_id), aggregate_version=1)
    duplicates = counter(
        metrics(suite, "orders-worker"),
        "suite_events_duplicates_total",
        service="orders",
        type="user.created",
    )
    suite.publish_event(envelope)
    suite.publish_event(envelope)
    wait_for(
        lambda: (
            counter(
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
        counter(
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
        wanted = {"api/users", "worker/orders", "worker/notifications"}
        # the API logs the publication once the broker confirmed it, which may be after a worker
        # has handled the event
        published = any(line["message"] == f"published user.created {event_id}" for line in mine)
        return mine if wanted <= processes and published else None

    mine = wait_for(traced, what="log lines of the sign-up in the API (which publishes it) and both workers")

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


def test_a_parked_message_shows_in_the_dead_letter_gauge_until_purged(suite: Suite) -> None:
    def depth() -> float:
        samples = suite.metrics("notifications-worker")
        return value(samples, "suite_dead_letter_queue_depth", service="notifications")

    before = depth()
    # given a message notifications cannot read, published where it listens
    headers = {"task": "order.placed", "id": str(uuid.uuid4()), "lang": "py", "retries": 0}
    suite.publish(b"{not json", routing_key="order.placed", headers=headers)

    # then the gauge counts it, and once an operator purges the queue it is back at 0
    wait_for(lambda: depth() == before + 1, what="the dead-letter gauge to count the parked message")
    suite.manage("notifications", "dlq", "purge", "--noinput")
    wait_for(lambda: depth() == 0, what="the dead-letter gauge back at 0")


def allow_connections(suite: Suite, service: str, allowed: bool) -> None:
    """Let the service's processes reach their database again, or shut them out (and drop their
    connections): their database is away, while the server stays up for everyone else."""
    name = urlsplit(suite.env[f"{service.upper()}_DATABASE_URL"]).path.lstrip("/")
    with psycopg.connect(databases.server_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.SQL("true" if allowed else "false")
            )
        )
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def test_readiness_turns_503_naming_the_database_while_it_is_away_then_200(suite: Suite) -> None:
    def api() -> tuple[int, Any]:
        return suite.call("GET", "orders", "/readyz")

    _, _, token = suite.sign_up("db-away")
    for _ in range(8):  # every API thread holds a connection to the database
        assert suite.call("GET", "orders", "/api/orders/", token=token)[0] == 200

    assert api()[0] == 200 and suite.http("orders-worker", "/readyz")[0] == 200
    # when the orders service's database goes away
    allow_connections(suite, "orders", False)
    try:
        # then its API and worker say they are not ready, and why
        _, body = wait_for(lambda: (r := api())[0] == 503 and r, what="the API to turn 503")
        assert body == {"status": "unavailable", "failing": ["database"]}, body  # no error text
        _, text = wait_for(
            lambda: (r := suite.http("orders-worker", "/readyz"))[0] == 503 and r,
            what="the worker to turn 503",
        )
        assert text.startswith("database"), text
    finally:
        allow_connections(suite, "orders", True)
    # and they are ready again once it is back
    wait_for(lambda: api()[0] == 200, what="the API ready again")
    wait_for(lambda: suite.http("orders-worker", "/readyz")[0] == 200, what="the worker ready again")
    # and no request fails on a connection the database dropped meanwhile
    for _ in range(8):
        assert suite.call("GET", "orders", "/api/orders/", token=token)[0] == 200
