"""Leases on outbox rows are stamped and compared with the database's clock, and only their holder
releases or marks the rows: a host whose clock is off, or a holder that acts late, changes nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from common.bus import outbox
from common.bus.models import OutboxMessage
from common.bus.outbox.publish import publish
from common.bus.outbox.relay import Relay, RelayConfig
from common.contracts import UserCreated

pytestmark = pytest.mark.django_db(transaction=True)
Status = OutboxMessage.Status


def skew_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """This process's clock is `seconds` off (negative: behind)."""
    real = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real() + timedelta(seconds=seconds))


def commit_event() -> OutboxMessage:
    user = uuid.uuid4()
    with transaction.atomic():
        envelope = publish(
            UserCreated(user_id=user, email="a@example.com", first_name="A", last_name="B"),
            aggregate_id=str(user),
            aggregate_version=1,
        )
    return OutboxMessage.objects.get(event_id=envelope.id)


def lease_left(row_id: int) -> float:
    """Seconds of lease the row has left, by the database's clock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(EPOCH FROM claimed_until - clock_timestamp())"
            " FROM bus_outboxmessage WHERE id = %s",
            [row_id],
        )
        row = cursor.fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def relay() -> Relay:
    return Relay(RelayConfig(service=settings.SERVICE_NAME, amqp_url=settings.AMQP_URL, batch_size=10))


def test_a_committing_process_whose_clock_is_behind_still_leases_its_rows_for_the_full_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given dispatch on commit from a process whose clock is 2 minutes behind, and no broker to
    # publish to (so the row keeps its lease)
    skew_clock(monkeypatch, -120)
    monkeypatch.setattr("common.bus.outbox.on_commit.Dispatcher.submit", lambda self, committed: None)
    row = commit_event()

    # then relays see the row leased for the whole lease, not already expired
    assert row.claimed_by.startswith("dispatch-")
    assert lease_left(row.id) > 50


def test_a_relay_whose_clock_is_ahead_leaves_a_live_lease_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a row another process holds for another minute
    monkeypatch.setattr("common.bus.outbox.on_commit.Dispatcher.submit", lambda self, committed: None)
    row = commit_event()
    assert lease_left(row.id) > 50

    # when a relay whose clock is 2 minutes ahead looks for work
    skew_clock(monkeypatch, 120)
    late = relay()
    try:
        taken = late.relay_once()
    finally:
        late.publisher.close()

    # then it takes nothing
    assert taken == 0
    assert OutboxMessage.objects.get(id=row.id).claimed_by == row.claimed_by


def test_a_former_holder_can_neither_release_nor_mark_a_row_another_now_holds() -> None:
    # given a row whose holder's lease ran out, now claimed by a relay
    with transaction.atomic():
        user = uuid.uuid4()
        envelope = publish(
            UserCreated(user_id=user, email="a@example.com", first_name="A", last_name="B"),
            aggregate_id=str(user),
            aggregate_version=1,
        )
    OutboxMessage.objects.filter(event_id=envelope.id).update(
        claimed_by="dispatch-former",
        claimed_until=timezone.now() - timedelta(seconds=1),
        status=Status.PENDING,
    )
    new_holder = relay()
    try:
        rows, _ = new_holder._claim(10)
    finally:
        new_holder.publisher.close()
    [row] = rows
    assert OutboxMessage.objects.get(id=row.id).claimed_by == new_holder.owner

    # when the former holder releases it, then marks it, late
    outbox.release([row.id], owner="dispatch-former")
    marked = outbox.mark_published([row.id], owner="dispatch-former")

    # then the new holder's lease stands and the row is still its to publish
    after = OutboxMessage.objects.get(id=row.id)
    assert marked == 0
    assert (after.status, after.claimed_by) == (Status.PENDING, new_holder.owner)
    assert lease_left(row.id) > 50
