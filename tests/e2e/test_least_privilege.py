"""Least privilege on the real broker: each service runs with a broker user that may publish to
`events` and use only its own queues, and the whole story still works; what it may not do, it
cannot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection, Exchange, Producer, Queue

from common.bus.amqp.connection import raw_channel
from tests.support import broker
from tests.support.metrics import counter
from tests.support.polling import wait_for
from tests.support.suite import Suite


def as_service(suite: Suite, service: str) -> Connection:
    user, password = suite.broker_users[service]
    return Connection(
        broker.amqp_url(suite.vhost, user=user, password=password),
        transport_options={"confirm_publish": True},
    )


def kinds(suite: Suite, token: str) -> list[str]:
    status, body = suite.call("GET", "notifications", "/api/notifications/", token=token)
    return [n["kind"] for n in body["results"]] if status == 200 else []


def test_the_story_works_with_one_least_privileged_user_per_service(locked: Suite) -> None:
    _, _, token = locked.sign_up("locked")
    wait_for(lambda: "welcome" in kinds(locked, token), what="the welcome notification")

    def place() -> dict[str, Any] | None:
        status, body = locked.call(
            "POST",
            "orders",
            "/api/orders/",
            {"items": [{"sku": "A", "quantity": 1, "unit_price": "2.00"}]},
            token=token,
        )
        return body if status == 201 else None

    wait_for(place, what="the order")
    wait_for(lambda: "order_placed" in kinds(locked, token), what="the confirmation")

    # the APIs published their events themselves, on commit, with their own broker users
    for service, event_type in (("users", "user.created"), ("orders", "order.placed")):
        published = locked.metrics(f"{service}-api")  # with the METRICS_TOKEN production requires
        assert locked.call("GET", service, "/metrics")[0] == 401  # and nobody else reads them
        assert counter(published, "suite_events_published_total", service=service, type=event_type) >= 1
        relayed = locked.metrics(f"{service}-relay")
        assert counter(relayed, "suite_events_published_total", service=service, type=event_type) == 0


def refused(action: Callable[[], object]) -> bool:
    try:
        action()
    except AccessRefused:
        return True
    return False


@pytest.mark.parametrize(
    ("service", "other_queue"),
    [("orders", "notifications.events"), ("notifications", "orders.events.dlq"), ("users", "orders.events")],
)
def test_a_service_cannot_read_another_services_queue(locked: Suite, service: str, other_queue: str) -> None:
    with as_service(locked, service) as conn:
        assert refused(lambda: raw_channel(conn).basic_get(other_queue, no_ack=False))


def test_a_service_reads_its_own_queue_and_publishes_to_events_only(locked: Suite) -> None:
    with as_service(locked, "orders") as conn:
        raw_channel(conn).queue_declare("orders.events.dlq", passive=True)  # its own: allowed
        Producer(conn.default_channel).publish(
            b"{}", exchange=Exchange("events", type="topic"), routing_key="nobody.listens", declare=[]
        )
    with as_service(locked, "orders") as conn:
        assert refused(lambda: Queue("rogue", durable=False)(conn.default_channel).declare())
    with as_service(locked, "orders") as conn:
        assert refused(lambda: raw_channel(conn).exchange_declare("rogue", "topic"))
    with as_service(locked, "orders") as conn:
        assert refused(lambda: raw_channel(conn).queue_purge("notifications.events"))
