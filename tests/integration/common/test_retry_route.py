"""Retries travel through Celery's native delayed-delivery queues on the real broker, come back to
the failing service's queue only, and survive a second trip through the same delay level."""

from __future__ import annotations

import uuid

from django.conf import settings
from kombu import Connection, Producer, Queue
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    declare_native_delayed_delivery_exchanges_and_queues,
)

from common.bus.amqp import topology
from common.bus.amqp.connection import raw_channel
from common.bus.amqp.wire import TaskMessage, envelope_message
from common.bus.consume import deadletters
from common.contracts import Envelope, UserCreated
from tests.support.polling import wait_for


def test_a_retry_passing_a_delay_level_it_went_through_before_comes_back() -> None:
    with Connection(settings.AMQP_URL, transport_options={"confirm_publish": True}) as conn:
        # given the topology a worker sets up: queues, delayed-delivery exchanges, their bindings
        declare_native_delayed_delivery_exchanges_and_queues(conn, "quorum")
        for service in ("orders", "notifications"):
            topology.declare(conn, service, ["user.created"])
            bind_queue_to_native_delayed_delivery_exchange(
                conn, topology.service_queue(service, ["user.created"])
            )
            raw_channel(conn).queue_purge(topology.queue_name(service))
        event = UserCreated(user_id=uuid.uuid4(), email="a@example.com", first_name="A", last_name="B")
        message = envelope_message(
            Envelope.wrap(event, producer="users", aggregate_id="a", aggregate_version=1), origin="t"
        )
        raw = TaskMessage(message.body, message.headers, message.properties, "user.created")
        orders = Queue("orders.events", no_declare=True)(conn.default_channel)
        producer = Producer(conn.default_channel)

        # 1 s goes through delay level 0; 3 s through level 1 and then level 0 again
        for attempt, delay in ((1, 1), (2, 3)):
            # when orders retries it
            deadletters.schedule_retry(producer, "orders", raw, delay=delay, attempt=attempt, error="x")

            # then it is back in orders' queue, and only there, with the attempt count
            received = wait_for(
                lambda: orders.get(no_ack=True), timeout=15, what=f"retry {attempt} back in orders.events"
            )
            raw = TaskMessage.of(received)
            assert raw.headers["retries"] == attempt
            assert raw.headers["id"] == message.headers["id"]
            assert raw.headers.get("x-death"), "it really went through a delay queue"
        _, waiting, _ = raw_channel(conn).queue_declare("notifications.events", passive=True)
        assert waiting == 0
