"""Personal data is not kept past its use: a running relay, pruning as its command configures it,
removes published events that carry personal data and expired dead letters, and nothing else."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common.bus.management.commands.relay import pruning
from common.bus.models import DeadLetter, OutboxMessage
from common.bus.outbox.publish import publish
from common.bus.outbox.relay import Relay, RelayConfig
from common.contracts import OrderCancelled, UserCreated
from tests.support.polling import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("relay_path_only")]
Status = OutboxMessage.Status


def test_the_relay_keeps_no_published_personal_event_and_no_expired_dead_letter() -> None:
    user = uuid.uuid4()
    with transaction.atomic():
        publish(
            UserCreated(user_id=user, email="ada@example.com", first_name="Ada", last_name="L"),
            aggregate_id=str(user),
            aggregate_version=1,
        )
        publish(
            UserCreated(user_id=uuid.uuid4(), email="bob@example.com", first_name="Bob", last_name="L"),
            aggregate_id="pending",
            aggregate_version=1,
        )
        publish(
            OrderCancelled(order_id=uuid.uuid4(), customer_id=user, reason="customer"),
            aggregate_id="order",
            aggregate_version=2,
        )
    now = timezone.now()
    OutboxMessage.objects.exclude(aggregate_id="pending").update(status=Status.PUBLISHED, published_at=now)
    retention = timedelta(days=settings.BUS_DEAD_LETTER_RETENTION_DAYS)
    for name, parked_at in (("expired", now - retention - timedelta(hours=1)), ("recent", now)):
        DeadLetter.objects.create(id=name, parked_at=parked_at, kind="handler", body=b"{}")
    stop = threading.Event()
    relay = Relay(
        RelayConfig(
            service=settings.SERVICE_NAME, amqp_url=settings.AMQP_URL, prune_every=0.0, pruning=pruning()
        ),
        stop=stop,
    )
    running = threading.Thread(target=relay.run)
    running.start()
    try:
        wait_for(lambda: not DeadLetter.objects.filter(id="expired").exists(), what="the expired dead letter")
        wait_for(
            lambda: not OutboxMessage.objects.filter(aggregate_id=str(user)).exists(),
            what="the published user.created to be pruned",
        )
    finally:
        stop.set()
        running.join(30)
    # the order event (no personal data) is kept for its retention; the pending row is the relay's to
    # publish, and the recent dead letter stays
    assert set(OutboxMessage.objects.values_list("event_type", flat=True)) >= {"order.cancelled"}
    assert list(DeadLetter.objects.values_list("id", flat=True)) == ["recent"]
