"""A message the broker refuses fails its own row, with the reason, and nothing else: the relay
goes on publishing the rows around it (it used to resend the refused row for ever)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from django.db import transaction
from kombu import Connection

from common.bus.amqp import topology
from common.bus.models import OutboxMessage
from common.bus.outbox.publish import publish
from common.contracts import UserCreated
from tests.support import broker
from tests.support.polling import wait_for
from tests.support.processes import Process, wait_log

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    # the rows must be the relay's: the test process does not publish them on commit
    pytest.mark.usefixtures("relay_path_only"),
]
Status = OutboxMessage.Status


@pytest.fixture
def only_user_events_url() -> Iterator[str]:
    """A broker user that may publish user.* events only: RabbitMQ refuses (closes the channel
    over) anything else it publishes to the events exchange."""
    vhost = broker.create_vhost("topic")
    with Connection(broker.amqp_url(vhost)) as conn:  # a consumer of user.created, so it routes
        topology.declare(conn, "orders", ["user.created"])
    user, password = broker.create_user(vhost, "topic", {"configure": ".*", "write": ".*", "read": ".*"})
    broker.set_topic_permissions(vhost, user, "events", write=r"^user\..*", read=".*")
    try:
        yield broker.amqp_url(vhost, user=user, password=password)
    finally:
        broker.delete_user(user)
        broker.delete_vhost(vhost)


def commit(event_type: str = "user.created") -> int:
    user = uuid.uuid4()
    with transaction.atomic():
        envelope = publish(
            UserCreated(user_id=user, email="a@example.com", first_name="A", last_name="B"),
            aggregate_id=str(user),
            aggregate_version=1,
        )
        row = OutboxMessage.objects.get(event_id=envelope.id)
        row.event_type = event_type
        row.save(update_fields=["event_type"])
    return row.id


def test_a_refused_message_fails_its_row_and_the_others_are_published(
    spawn: Callable[..., Process], only_user_events_url: str
) -> None:
    # given a backlog with one row the broker will refuse among rows it accepts
    before = [commit() for _ in range(3)]
    refused = commit("order.forbidden")
    after = [commit() for _ in range(3)]

    # when a relay publishes it
    relay = spawn("relay", "--batch-size", "10", name="relay", AMQP_URL=only_user_events_url)
    wait_log(relay, "started")

    # then every other row is published, and the refused one failed, saying why
    def settled() -> bool:
        rows = dict(OutboxMessage.objects.values_list("id", "status"))
        return all(rows[i] == Status.PUBLISHED for i in before + after) and rows[refused] == Status.FAILED

    wait_for(settled, timeout=60, what="the rows around the refused one published, it failed")
    failed = OutboxMessage.objects.get(id=refused)
    assert "refused by the broker" in failed.last_error and "ACCESS_REFUSED" in failed.last_error
    # and the relay carries on with what comes next
    later = commit()
    wait_for(
        lambda: OutboxMessage.objects.get(id=later).status == Status.PUBLISHED, what="a later row published"
    )
    assert relay.alive()
