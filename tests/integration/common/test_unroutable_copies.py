"""Retries and dead letters are published mandatory: with nowhere to go (the dead-letter queue or a
delay binding missing) the publication fails, so the original is requeued instead of acked and
lost. The broker would confirm, and drop, a copy that routes nowhere."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from amqp.exceptions import ChannelError
from kombu import Connection, Exchange, Producer
from kombu.transport.native_delayed_delivery import level_name

from common.bus.amqp import topology
from common.bus.amqp.wire import TaskMessage, envelope_message
from common.bus.consume import deadletters
from common.bus.consume.deadletters import Failure
from common.contracts import Envelope, UserCreated
from tests.support import broker


@pytest.fixture
def bare_url() -> Iterator[str]:
    """A vhost with the exchanges a copy is published to, but no queue bound to them."""
    vhost = broker.create_vhost("bare")
    with Connection(broker.amqp_url(vhost)) as conn:
        for exchange in (topology.DEAD_LETTER_EXCHANGE, Exchange(level_name(27), type="topic", durable=True)):
            exchange(conn.default_channel).declare()
    try:
        yield broker.amqp_url(vhost)
    finally:
        broker.delete_vhost(vhost)


def raw_message() -> TaskMessage:
    event = UserCreated(user_id=uuid.uuid4(), email="a@example.com", first_name="A", last_name="B")
    message = envelope_message(
        Envelope.wrap(event, producer="users", aggregate_id="a", aggregate_version=1), origin="test"
    )
    return TaskMessage(message.body, message.headers, message.properties, "user.created")


def test_a_dead_letter_with_no_dead_letter_queue_fails_to_publish(bare_url: str) -> None:
    with (
        Connection(bare_url, transport_options={"confirm_publish": True}) as conn,
        pytest.raises(ChannelError, match="NO_ROUTE"),
    ):
        deadletters.park(
            Producer(conn.default_channel), "orders", raw_message(), Failure("error", "E", "boom")
        )


def test_a_retry_with_no_delay_binding_fails_to_publish(bare_url: str) -> None:
    with (
        Connection(bare_url, transport_options={"confirm_publish": True}) as conn,
        pytest.raises(ChannelError, match="NO_ROUTE"),
    ):
        deadletters.schedule_retry(
            Producer(conn.default_channel), "orders", raw_message(), delay=2, attempt=1, error="boom"
        )
