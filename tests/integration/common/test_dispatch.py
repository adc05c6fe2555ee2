"""Dispatch on commit: the committing process publishes its events itself, and whatever it cannot
publish (broker unreachable, process killed) still reaches the broker through a relay (G1)."""

from __future__ import annotations

import signal
import textwrap
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.test import override_settings

from common.bus.models import OutboxMessage
from common.bus.outbox import on_commit
from common.bus.outbox.publish import publish
from common.contracts import UserCreated
from tests.integration.common.test_relay_faults import Spawn, through
from tests.support.polling import wait_for
from tests.support.processes import wait_log, with_fault
from tests.support.proxy import TcpProxy
from tests.support.tap import EventTap

pytestmark = [pytest.mark.django_db(transaction=True)]
Status = OutboxMessage.Status


@pytest.fixture
def dispatching() -> Iterator[None]:
    """Dispatch on commit turned on, with a dispatcher made for this test's settings."""
    on_commit.stop()
    with override_settings(BUS_DISPATCH_ON_COMMIT=True):
        yield
        on_commit.stop()


def commit_event(aggregate: str = "dispatched") -> str:
    with transaction.atomic():
        event = UserCreated(user_id=uuid.uuid4(), email="d@example.com", first_name="D", last_name="E")
        return str(publish(event, aggregate_id=aggregate, aggregate_version=1).id)


def row(event_id: str) -> OutboxMessage:
    return OutboxMessage.objects.get(event_id=event_id)


def test_the_committing_process_publishes_and_marks_its_event(dispatching: None, tap: EventTap) -> None:
    # when an event commits, and no relay runs
    event_id = commit_event()

    # then it is on the broker, confirmed, and its row is marked published
    [received] = tap.wait_for(1)
    assert received["envelope"]["id"] == event_id
    assert received["headers"]["task"] == "user.created"
    wait_for(lambda: row(event_id).status == Status.PUBLISHED, what="the row to be marked published")
    assert row(event_id).claimed_until is None


def test_a_rolled_back_event_is_never_dispatched(dispatching: None, tap: EventTap) -> None:
    # when one transaction rolls back after publishing, and the next commits
    def failing_change() -> None:
        with transaction.atomic():
            event = UserCreated(user_id=uuid.uuid4(), email="r@example.com", first_name="R", last_name="B")
            publish(event, aggregate_id="rolled-back", aggregate_version=1)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    kept = commit_event()

    # then only the committed one is published (one dispatcher thread: it would have come first)
    received = tap.wait_for(1)
    assert [m["envelope"]["id"] for m in tap.drain()] == [kept], received
    assert not OutboxMessage.objects.filter(aggregate_id="rolled-back").exists()


def test_with_the_broker_unreachable_the_event_goes_to_the_relay_at_once(spawn: Spawn, tap: EventTap) -> None:
    # given a dispatcher whose only way to the broker is a cut connection
    parts = urlsplit(settings.AMQP_URL)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    proxy.cut()
    unreachable = through(proxy)
    on_commit.stop()
    try:
        with override_settings(BUS_DISPATCH_ON_COMMIT=True, AMQP_URL=unreachable):
            # when an event commits
            event_id = commit_event()

            # then the dispatcher gives it back to the relays (no lease left), and says so
            wait_for(lambda: row(event_id).claimed_until is None, timeout=30, what="the row to be released")
            assert row(event_id).status == Status.PENDING
            # and while the broker keeps failing, new rows are not leased to it at all
            assert OutboxMessage.objects.get(event_id=commit_event("next")).claimed_until is None
            on_commit.stop()
    finally:
        proxy.close()

    # when a relay runs, both arrive
    relay = spawn("relay", name="relay")
    wait_log(relay, "started")
    received = tap.wait_for(2, timeout=30)
    assert event_id in {m["envelope"]["id"] for m in received}
    wait_for(lambda: row(event_id).status == Status.PUBLISHED, what="the relay to mark it")


def test_a_process_killed_before_it_dispatched_leaves_the_event_to_a_relay(
    spawn: Spawn, tap: EventTap
) -> None:
    # given a process that commits an event and dies by SIGKILL before publishing it
    lease = {"BUS_RELAY_LEASE_SECONDS": "13", "BUS_RELAY_CONFIRM_TIMEOUT": "1"}
    code = textwrap.dedent(
        """
        import uuid
        from django.db import transaction
        from common.bus.outbox import on_commit
        from common.bus.outbox.publish import publish
        from common.contracts import UserCreated
        with transaction.atomic():
            event = UserCreated(user_id=uuid.uuid4(), email="k@example.com", first_name="K", last_name="L")
            publish(event, aggregate_id="killed", aggregate_version=1)
        on_commit.stop()  # waits for the dispatcher, which dies before publishing; else a clean exit
        """
    )
    victim = spawn(
        "shell",
        "-c",
        code,
        name="victim",
        BUS_DISPATCH_ON_COMMIT="1",
        **with_fault("dispatch-kill-before-publish"),
        **lease,
    )
    assert victim.popen is not None
    assert victim.popen.wait(60) == -signal.SIGKILL

    # then its row is committed, leased to the dead process, and nothing reached the broker
    killed = OutboxMessage.objects.get(aggregate_id="killed")
    assert killed.status == Status.PENDING and killed.claimed_until is not None
    assert tap.drain() == []

    # when a relay runs, it publishes the event once the lease runs out
    spawn("relay", name="relay", **lease)
    [received] = tap.wait_for(1, timeout=30)
    assert received["envelope"]["id"] == str(killed.event_id)
    wait_for(lambda: row(str(killed.event_id)).status == Status.PUBLISHED, what="the relay to mark it")


def test_an_unroutable_dispatched_event_is_marked_failed_with_the_reason(dispatching: None) -> None:
    # given an event type no queue is bound for (a contract no consumer has: it is not registered)
    class NobodyListens(UserCreated):
        pass

    NobodyListens.event_type = f"test.nobody_listens_{uuid.uuid4().hex[:8]}"

    # when one commits and its process dispatches it
    with transaction.atomic():
        event = NobodyListens(user_id=uuid.uuid4(), email="n@example.com", first_name="N", last_name="L")
        event_id = str(publish(event, aggregate_id="nobody", aggregate_version=1).id)

    # then its row failed with the broker's reason, as a relay would have marked it, for an operator
    wait_for(lambda: row(event_id).status == Status.FAILED, what="the row to be marked failed")
    failed = row(event_id)
    assert "unroutable" in failed.last_error and NobodyListens.event_type in failed.last_error
    assert failed.claimed_until is None and failed.claimed_by == ""


def test_only_the_dispatcher_thread_commits_without_waiting_for_the_wal_flush() -> None:
    # its marks and releases are a relay's: one lost in a crash is an event published again
    def synchronous_commit() -> str:
        connections["default"].close()  # a connection of this thread, made anew
        with connections["default"].cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            value = str(cursor.fetchone()[0])
        connections["default"].close()
        return value

    seen: dict[str, str] = {}
    for name in (on_commit.THREAD, "some-other-thread"):
        thread = threading.Thread(target=lambda n=name: seen.__setitem__(n, synchronous_commit()), name=name)
        thread.start()
        thread.join()

    assert seen == {on_commit.THREAD: "off", "some-other-thread": "on"}
