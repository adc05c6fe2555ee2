"""The outbox in the caller's transaction, and the relay against the real database and broker."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.utils import timezone

from common.bus import outbox
from common.bus.models import OutboxMessage
from common.bus.outbox.publish import PublishOutsideTransaction, publish
from common.bus.outbox.relay import Relay, RelayConfig
from common.contracts import UserCreated
from common.contracts.envelope import Envelope
from common.observability.context import in_flight
from tests.support.polling import wait_for
from tests.support.relaying import relay_pending
from tests.support.tap import EventTap

# These tests drive the relay by hand (relay_pending, Relay): every row must be left to it, so the
# test process does not dispatch its rows on commit (tests/integration/common/test_dispatch.py does).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("relay_path_only")]
Status = OutboxMessage.Status


def event(email: str = "ada@example.com") -> UserCreated:
    return UserCreated(user_id=uuid.uuid4(), email=email, first_name="Ada", last_name="L")


def test_publish_writes_a_pending_row_in_the_callers_transaction() -> None:
    with transaction.atomic():
        envelope = publish(event(), aggregate_id="agg", aggregate_version=1)
        row = OutboxMessage.objects.get()  # visible inside the transaction already
    assert (row.event_id, row.event_type, row.status) == (envelope.id, "user.created", Status.PENDING)
    assert row.correlation_id == envelope.correlation_id


def test_a_rolled_back_transaction_leaves_no_row_and_publishes_nothing(tap: EventTap) -> None:
    def change_that_fails() -> None:
        with transaction.atomic():
            publish(event(), aggregate_id="agg", aggregate_version=1)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert not OutboxMessage.objects.exists()
    with transaction.atomic():
        marker = publish(event(), aggregate_id="marker", aggregate_version=1)

    assert relay_pending() == 1
    assert [r["envelope"]["id"] for r in tap.wait_for(1)] == [str(marker.id)]


def test_the_relay_publishes_in_creation_order_and_marks_rows_published(tap: EventTap) -> None:
    ids = []
    for i in range(25):
        with transaction.atomic():
            ids.append(
                str(publish(event(f"u{i}@example.com"), aggregate_id=f"a{i % 3}", aggregate_version=i + 1).id)
            )

    assert relay_pending(batch_size=10) == 25

    received = tap.wait_for(25)
    assert [r["envelope"]["id"] for r in received] == ids
    assert received[0]["headers"]["task"] == "user.created"
    assert received[0]["properties"]["delivery_mode"] == 2
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {Status.PUBLISHED}
    assert not OutboxMessage.objects.filter(published_at__isnull=True).exists()


def test_an_unroutable_event_is_marked_failed_with_the_reason_not_dropped() -> None:
    # given a row whose type no queue is bound for (nothing in this vhost listens to it)
    with transaction.atomic():
        envelope = publish(event(), aggregate_id="agg", aggregate_version=1)
        OutboxMessage.objects.filter(event_id=envelope.id).update(event_type="nobody.listens")

    relay_pending()

    row = OutboxMessage.objects.get()
    assert row.status == Status.FAILED
    assert "unroutable" in row.last_error and "nobody.listens" in row.last_error
    assert outbox.state().failed == 1
    # and an operator can put it back in line
    assert outbox.retry_failed() == 1
    assert OutboxMessage.objects.get().status == Status.PENDING


def test_state_reports_pending_count_and_oldest_age() -> None:
    with transaction.atomic():
        publish(event(), aggregate_id="a", aggregate_version=1)
        publish(event(), aggregate_id="b", aggregate_version=1)
    OutboxMessage.objects.filter(aggregate_id="a").update(created_at=timezone.now() - timedelta(minutes=5))

    state = outbox.state()

    assert state.pending == 2 and state.failed == 0
    assert 299 <= state.oldest_pending_age_seconds < 400


def test_prune_removes_only_published_rows_past_retention() -> None:
    with transaction.atomic():
        for name in ("old", "recent", "pending"):
            publish(event(), aggregate_id=name, aggregate_version=1)
    now = timezone.now()
    OutboxMessage.objects.filter(aggregate_id="old").update(
        status=Status.PUBLISHED, published_at=now - timedelta(days=8)
    )
    OutboxMessage.objects.filter(aggregate_id="recent").update(
        status=Status.PUBLISHED, published_at=now - timedelta(days=1)
    )

    assert outbox.prune(older_than=timedelta(days=7)) == 1
    assert sorted(OutboxMessage.objects.values_list("aggregate_id", flat=True)) == ["pending", "recent"]


def test_the_admin_shows_the_outbox_with_filters_and_retries_failed_rows() -> None:
    with transaction.atomic():
        failed = publish(event(), aggregate_id="f", aggregate_version=1)
        publish(event(), aggregate_id="p", aggregate_version=1)
    OutboxMessage.objects.filter(event_id=failed.id).update(status=Status.FAILED, last_error="boom")
    get_user_model().objects.create_superuser("root@example.com", "S3cure-passphrase")
    client = Client()
    client.login(email="root@example.com", password="S3cure-passphrase")

    page = client.get("/admin/bus/outboxmessage/?status__exact=failed")
    assert page.status_code == 200
    assert "boom" in page.content.decode() and "f</td>" in page.content.decode()

    failed_id = OutboxMessage.objects.get(event_id=failed.id).id
    client.post(
        "/admin/bus/outboxmessage/", {"action": "publish_again", "_selected_action": [str(failed_id)]}
    )
    assert OutboxMessage.objects.get(id=failed_id).status == Status.PENDING


def test_publish_outside_a_transaction_is_refused() -> None:
    with pytest.raises(PublishOutsideTransaction, match=r"inside transaction\.atomic"):
        publish(event(), aggregate_id="agg", aggregate_version=1)
    assert not OutboxMessage.objects.exists()


def test_the_correlation_in_flight_travels_to_the_broker(tap: EventTap) -> None:
    correlation, cause = uuid.uuid4(), uuid.uuid4()
    with in_flight(correlation=correlation, causation=None, event=cause), transaction.atomic():
        publish(event(), aggregate_id="agg", aggregate_version=1)

    relay_pending()

    [received] = tap.wait_for(1)
    assert received["envelope"]["correlation_id"] == str(correlation)
    assert received["envelope"]["causation_id"] == str(cause)
    assert received["headers"]["root_id"] == str(correlation)
    assert received["headers"]["parent_id"] == str(cause)


def test_a_running_relay_prunes_what_its_command_gives_it_with_the_outbox() -> None:
    # given an inbox row past its retention, and a relay told to prune the inbox too
    from functools import partial

    from common.bus.consume import inbox
    from common.bus.models import InboxMessage

    InboxMessage.objects.create(
        event_id=uuid.uuid4(), event_type="user.created", handled_at=timezone.now() - timedelta(days=31)
    )
    stop = threading.Event()
    relay = Relay(
        RelayConfig(
            service=settings.SERVICE_NAME,
            amqp_url=settings.AMQP_URL,
            prune_every=0.0,
            pruning=(partial(inbox.prune, older_than=timedelta(days=30)),),
        ),
        stop=stop,
    )
    running = threading.Thread(target=relay.run)
    running.start()
    try:
        # then its loop removes it
        wait_for(lambda: not InboxMessage.objects.exists(), what="the old inbox row to be pruned")
    finally:
        stop.set()
        running.join(30)


class Wakes:
    """A housekeeping task that only counts the idle relay's wake-ups."""

    count = 0

    def __call__(self) -> int:
        self.count += 1
        return 0


class CountingRelay(Relay):
    claims = 0

    def _claim(self, limit: int) -> tuple[list[outbox.Outgoing], bool]:
        self.claims += 1
        return super()._claim(limit)


@contextlib.contextmanager
def running_relay(woken: Wakes) -> Iterator[CountingRelay]:
    """A relay that wakes often for housekeeping (`woken` counts it), run until the block ends."""
    stop = threading.Event()
    config = RelayConfig(
        service=settings.SERVICE_NAME,
        amqp_url=settings.AMQP_URL,
        housekeeping_every=0.05,
        housekeeping=(woken,),
    )
    relay = CountingRelay(config, stop=stop)
    running = threading.Thread(target=relay.run)
    running.start()
    try:
        yield relay
    finally:
        stop.set()
        running.join(30)


def test_an_idle_relay_woken_by_notify_claims_nothing_between_notifications(tap: EventTap) -> None:
    # a claim on every wake-up cost the events published meanwhile milliseconds on a small host
    woken = Wakes()
    with running_relay(woken) as relay:
        wait_for(lambda: woken.count >= 20, what="twenty idle wake-ups for housekeeping")
        assert relay.claims == 1  # its first look; nothing was committed or released since
        with transaction.atomic():
            publish(event(), aggregate_id="wakes", aggregate_version=1)
        wait_for(lambda: relay.published_total == 1, timeout=4, what="the NOTIFY to wake it")


def test_rows_released_by_their_holder_wake_an_idle_relay_at_once(tap: EventTap) -> None:
    # the dispatcher releases what the broker failed it: a relay takes it without waiting to poll
    envelope = Envelope.wrap(event(), producer="users", aggregate_id="held", aggregate_version=1)
    row_id = outbox.write(
        envelope, envelope.model_dump_json(), owner="a-dispatcher", lease=60, using="default"
    )
    woken = Wakes()
    with running_relay(woken) as relay:
        wait_for(lambda: relay.claims and woken.count >= 3, what="the relay idle after its first look")
        outbox.release([row_id], owner="a-dispatcher")
        # sooner than its poll (5 s): the release woke it
        [received] = tap.wait_for(1, timeout=4)
        assert received["envelope"]["id"] == str(envelope.id)
