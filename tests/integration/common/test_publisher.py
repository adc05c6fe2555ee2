"""The relay's confirming publisher against the real broker, where it can go wrong mid-batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from common.bus.amqp.confirms import ConfirmingPublisher, PublishRefused
from common.bus.amqp.wire import TaskMessage, task_message
from common.bus.internals.py_amqp import FLUSH_AT
from tests.support import broker


@pytest.fixture
def publish_refused_url() -> Iterator[str]:
    """A vhost where this user may declare the exchange but not publish to it: the broker closes
    the channel (403) on the first publication."""
    vhost = broker.create_vhost("refused")
    user, password = broker.create_user(vhost, "refused", {"configure": ".*", "write": "^$", "read": ".*"})
    try:
        yield broker.amqp_url(vhost, user=user, password=password)
    finally:
        broker.delete_user(user)
        broker.delete_vhost(vhost)


def messages(total_bytes: int) -> list[TaskMessage]:
    out: list[TaskMessage] = []
    while sum(len(m.body) for m in out) < total_bytes:
        event_id = str(uuid.uuid4())
        out.append(
            task_message(
                event_id=event_id,
                event_type="test.refused",
                aggregate_id="agg",
                correlation_id=event_id,
                causation_id=None,
                envelope_json='{"data": "' + "x" * 1000 + '"}',
                origin="test",
            )
        )
    return out


def test_a_channel_the_broker_closes_mid_batch_is_a_refusal_not_an_outage(publish_refused_url: str) -> None:
    # more than one chunk of frames, so the broker's channel.close arrives while the batch is sent
    batch = messages(FLUSH_AT * 8)
    publisher = ConfirmingPublisher(publish_refused_url, confirm_timeout=10)
    try:
        with pytest.raises(PublishRefused, match=r"ACCESS_REFUSED"):
            publisher.wait(publisher.send(batch))
    finally:
        publisher.close()
