"""The topology on the real broker: each service gets exactly the events it handles, and only its
own retries."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection, Producer

from common.bus.amqp import topology
from common.bus.amqp.connection import raw_channel
from common.bus.amqp.wire import envelope_message
from common.contracts import Envelope, UserCreated
from tests.support import broker
from tests.support.broker import queue_depth

URL = os.environ.get("AMQP_URL", "")
SUBSCRIPTIONS = {"orders": ["user.created"], "notifications": ["order.placed", "user.created"]}


@pytest.fixture
def declared() -> Iterator[Connection]:
    # confirmed publishes: once publish() returns, the broker has routed the message
    with Connection(URL, transport_options={"confirm_publish": True}) as conn:
        for service, types in SUBSCRIPTIONS.items():
            topology.declare(conn, service, types)
        for service in SUBSCRIPTIONS:
            raw_channel(conn).queue_purge(topology.queue_name(service))
        yield conn


def send(conn: Connection, routing_key: str) -> None:
    event = UserCreated(user_id=uuid.uuid4(), email="a@example.com", first_name="A", last_name="B")
    message = envelope_message(
        Envelope.wrap(event, producer="users", aggregate_id="a", aggregate_version=1), origin="test"
    )
    Producer(conn.default_channel).publish(
        message.body,
        exchange=topology.EVENTS_EXCHANGE,
        routing_key=routing_key,
        headers=message.headers,
        content_type="application/json",
        content_encoding="utf-8",
    )


def depths() -> dict[str, int]:
    return {s: queue_depth(URL, topology.queue_name(s)) for s in SUBSCRIPTIONS}


def test_an_event_reaches_every_subscribed_service_once(declared: Connection) -> None:
    send(declared, "user.created")
    assert depths() == {"orders": 1, "notifications": 1}


def test_an_event_reaches_only_its_subscribers(declared: Connection) -> None:
    send(declared, "order.placed")
    assert depths() == {"orders": 0, "notifications": 1}


def test_a_retry_key_reaches_only_its_own_service(declared: Connection) -> None:
    send(declared, topology.retry_routing_key("orders"))
    assert depths() == {"orders": 1, "notifications": 0}


def test_the_broker_holds_quorum_queues_with_their_dead_letter_queue_and_bindings(
    declared: Connection,
) -> None:
    # as RabbitMQ itself reports them, not as the code describes them
    held = broker.queues(broker.vhost_of(URL))
    work, dlq = held[topology.queue_name("orders")], held[topology.dead_letter_queue_name("orders")]
    assert work["type"] == dlq["type"] == "quorum" and work["durable"] and dlq["durable"]
    assert work["arguments"]["x-dead-letter-exchange"] == topology.DEAD_LETTER_EXCHANGE.name
    assert work["arguments"]["x-dead-letter-routing-key"] == topology.dead_letter_queue_name("orders")
    assert work["arguments"]["x-dead-letter-strategy"] == "at-least-once"
    assert "x-delivery-limit" not in work["arguments"]  # a policy: it can change in place
    bound = broker.bindings(broker.vhost_of(URL))
    assert {
        (topology.EVENTS_EXCHANGE.name, "orders.events", "user.created"),
        (topology.EVENTS_EXCHANGE.name, "orders.events", topology.retry_routing_key("orders")),
        (topology.DEAD_LETTER_EXCHANGE.name, "orders.events.dlq", "orders.events.dlq"),
    } <= bound
    # and nothing else on the events exchange routes into orders' queue (but, once a worker ran,
    # Celery's delayed-delivery bindings of the same keys: `#.<key>`)
    events = topology.EVENTS_EXCHANGE.name
    keys = {
        key.removeprefix("#.")
        for exchange, queue, key in bound
        if (exchange, queue) == (events, "orders.events")
    }
    assert keys == {"user.created", topology.retry_routing_key("orders")}
