"""Least privilege on the real broker: each service runs with a broker user that may publish to
`events` and use only its own queues, and the whole story still works; what it may not do, it
cannot."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from amqp.exceptions import AccessRefused, PreconditionFailed
from kombu import Connection, Exchange, Producer, Queue

from common.bus.amqp.connection import raw_channel
from common.bus.amqp.wire import envelope_message
from common.bus.internals import kombu as delays
from common.contracts import Envelope, UserUpdated
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
    with as_service(locked, "orders") as conn:  # not an event type orders produces (topic permission)
        assert refused(
            lambda: Producer(conn.default_channel).publish(
                b"{}", exchange=Exchange("events", type="topic"), routing_key="nobody.listens", declare=[]
            )
        )
    with as_service(locked, "orders") as conn:
        assert refused(lambda: Queue("rogue", durable=False)(conn.default_channel).declare())
    with as_service(locked, "orders") as conn:
        assert refused(lambda: raw_channel(conn).exchange_declare("rogue", "topic"))
    with as_service(locked, "orders") as conn:
        assert refused(lambda: raw_channel(conn).queue_purge("notifications.events"))


def forged_user_update(locked: Suite, user_id: uuid.UUID) -> Envelope:
    event = UserUpdated(
        user_id=user_id, email="attacker@example.com", first_name="Eve", last_name="X", changed=("email",)
    )
    # everything in it says users; only the broker user that publishes it is another's
    return Envelope.wrap(event, producer="users", aggregate_id=str(user_id), aggregate_version=2)


def test_a_service_cannot_publish_another_services_event_types(locked: Suite) -> None:
    """Any broker principal could publish any routing key on `events`: orders redirecting a user's
    mail with a user.updated."""
    message = envelope_message(forged_user_update(locked, uuid.uuid4()), origin="orders")
    with as_service(locked, "orders") as conn:
        assert refused(
            lambda: Producer(conn.default_channel).publish(
                message.body,
                exchange=Exchange("events", type="topic"),
                routing_key="user.updated",
                headers=message.headers,
                declare=[],
            )
        )


def test_a_service_cannot_claim_to_be_another(locked: Suite) -> None:
    """RabbitMQ refuses a user_id that is not the publishing connection's user."""
    users_broker_user = locked.broker_users["users"][0]
    with as_service(locked, "orders") as conn, pytest.raises(PreconditionFailed, match="user_id"):
        Producer(conn.default_channel).publish(
            b"{}",
            exchange=Exchange("events", type="topic"),
            routing_key="order.placed",
            user_id=users_broker_user,
            declare=[],
        )


def test_an_event_from_the_wrong_producer_is_parked_not_applied(locked: Suite) -> None:
    """Around the topic permissions: orders drops a forged user.updated into notifications' queue
    through the delay exchanges every service may use for its retries. Notifications refuses it: its
    user_id is orders', not users'."""
    user_id, email, token = locked.sign_up("target")
    wait_for(lambda: kinds(locked, token) == ["welcome"], what="the welcome")
    forged = forged_user_update(locked, uuid.UUID(user_id))
    message = envelope_message(forged, origin="orders")
    with as_service(locked, "orders") as conn:
        broker.publish_task(
            conn,
            message,
            exchange=Exchange(delays.delay_exchange(), type="topic"),
            routing_key=delays.delay_routing_key(1, "notifications.retry"),
        )

    def parked() -> str | None:
        listing = locked.manage("notifications", "dlq", "list")
        return listing if str(forged.id) in listing else None

    listing = wait_for(parked, what="the forged event parked")
    line = next(line for line in listing.splitlines() if str(forged.id) in line)
    assert "[forged]" in line and "user.updated is produced by users" in line, line
    [(address,)] = locked.sql(
        "notifications", "SELECT email FROM notifications_contact WHERE user_id = %s", (user_id,)
    )
    assert address == email  # not the attacker's
    locked.manage("notifications", "dlq", "purge", "--noinput")


def test_a_service_cannot_broadcast_remote_control_to_every_worker(locked: Suite) -> None:
    """Any service could publish `shutdown` to celery.pidbox, which every service's workers obey;
    its own workers still bind there and answer (Flower's view of them is tested with the UI)."""
    with as_service(locked, "orders") as conn:
        assert refused(
            lambda: Producer(conn.default_channel).publish(
                {"method": "ping", "arguments": {}, "destination": None},
                exchange=Exchange("celery.pidbox", type="fanout"),
                routing_key="",
                serializer="json",
                declare=[],
            )
        )
