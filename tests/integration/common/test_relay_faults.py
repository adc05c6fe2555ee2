"""G1 under real faults: relays as real processes, a cut broker connection, a SIGKILL mid-batch,
two relays on one table. Duplicates are allowed (consumers drop them); losses never."""

from __future__ import annotations

import re
import signal
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import transaction

from common.bus.models import OutboxMessage
from common.bus.outbox.publish import publish
from common.contracts import UserCreated
from tests.support.polling import wait_for
from tests.support.processes import Process, wait_log, with_fault
from tests.support.proxy import TcpProxy
from tests.support.tap import EventTap

# G1 on the relay's path: the rows these tests commit must be the relays' to publish, so the test
# process does not dispatch them on commit (test_dispatch.py proves that path under faults).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("relay_path_only"),
]
Spawn = Callable[..., Process]


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    parts = urlsplit(settings.AMQP_URL)
    tcp = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    yield tcp
    tcp.close()


def through(proxy: TcpProxy) -> str:
    parts = urlsplit(settings.AMQP_URL)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def commit_events(count: int, *, aggregates: int, per_transaction: int = 1, prefix: str = "agg") -> list[str]:
    """Commit `count` events spread over `aggregates` aggregates; return their ids in order."""
    ids: list[str] = []
    versions: defaultdict[str, int] = defaultdict(int)
    for start in range(0, count, per_transaction):
        with transaction.atomic():
            for i in range(start, min(start + per_transaction, count)):
                aggregate = f"{prefix}-{i % aggregates}"
                versions[aggregate] += 1
                event = UserCreated(
                    user_id=uuid.uuid4(), email=f"u{i}@example.com", first_name="A", last_name="B"
                )
                ids.append(
                    str(publish(event, aggregate_id=aggregate, aggregate_version=versions[aggregate]).id)
                )
    return ids


def pending() -> int:
    return OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING).count()


def assert_aggregate_order(received: list[dict[str, Any]]) -> None:
    """Each aggregate's events arrived in version order (first arrivals; later copies are dupes)."""
    seen: set[str] = set()
    last: dict[str, int] = {}
    for message in received:
        envelope = message["envelope"]
        if envelope["id"] in seen:
            continue
        seen.add(envelope["id"])
        aggregate, version = envelope["aggregate_id"], envelope["aggregate_version"]
        assert version > last.get(aggregate, 0), f"{aggregate} v{version} after v{last[aggregate]}"
        last[aggregate] = version


def test_events_committed_while_the_broker_is_unreachable_are_published_after(
    spawn: Spawn, proxy: TcpProxy, tap: EventTap
) -> None:
    # given a running relay whose only way to the broker is our proxy
    relay = spawn("relay", "--batch-size", "20", name="relay", AMQP_URL=through(proxy))
    wait_log(relay, "started")
    before = commit_events(1, aggregates=1, prefix="before")
    tap.wait_for(1)
    wait_for(lambda: pending() == 0, what="the first event's confirm and mark")  # (it may follow the copy)

    # when the connection is cut and producers keep committing
    proxy.cut()
    during = commit_events(60, aggregates=5)
    wait_log(relay, "broker unavailable")
    assert pending() == 60  # nothing is lost or marked while the broker is away
    proxy.restore()

    # then every committed event arrives, in order per aggregate, and the outage was one log line
    wait_for(lambda: pending() == 0, timeout=60, what="the backlog to drain")
    received = tap.wait_for(61)
    assert {m["envelope"]["id"] for m in received} == set(before + during)
    assert_aggregate_order(received)
    log = relay.log()
    assert log.count("broker unavailable") == 1, log
    assert log.count("reachable again") == 1, log
    assert relay.alive()


def test_a_relay_killed_mid_batch_loses_nothing(spawn: Spawn, tap: EventTap) -> None:
    # given a backlog, and a relay that dies (SIGKILL) right after its first batch is confirmed
    ids = commit_events(300, aggregates=300, per_transaction=50)
    lease = {"BUS_RELAY_LEASE_SECONDS": "13", "BUS_RELAY_CONFIRM_TIMEOUT": "1"}  # a quick take-over
    victim = spawn(
        "relay", "--batch-size", "50", name="victim", **with_fault("relay-kill-after-publish"), **lease
    )
    assert victim.popen is not None
    assert victim.popen.wait(60) == -signal.SIGKILL

    # then its first batch (and maybe the next, already in flight) reached the broker, but every
    # row is still pending in the outbox
    tap.wait_for(50)
    assert pending() == 300

    # when a relay starts again, everything arrives at least once
    spawn("relay", "--batch-size", "50", name="survivor", **lease)
    wait_for(lambda: pending() == 0, timeout=60, what="the outbox to drain")
    received = tap.wait_for(350)
    assert {m["envelope"]["id"] for m in received} == set(ids)
    # the victim's batches in flight, twice: the consumers' inbox absorbs those copies
    assert 350 <= len(received) <= 400


def test_two_relays_publish_every_event_once_in_aggregate_order(spawn: Spawn, tap: EventTap) -> None:
    # given two relays waiting on the same outbox
    relays = [spawn("relay", "--batch-size", "10", name=f"relay{i}") for i in (1, 2)]
    for relay in relays:
        wait_log(relay, "LISTEN/NOTIFY")

    # when 1,000 events of 50 aggregates commit
    ids = commit_events(1000, aggregates=50, per_transaction=100)

    # then each is published exactly once, each aggregate in order, and both relays took a share
    wait_for(lambda: pending() == 0, timeout=60, what="the outbox to drain")
    received = tap.wait_for(1000)
    assert sorted(m["envelope"]["id"] for m in received) == sorted(ids)
    assert_aggregate_order(received)
    shares = []
    for relay in relays:
        relay.stop()
        shares.append(int(re.findall(r"stopped; published (\d+)", relay.log())[-1]))
    assert sum(shares) == 1000
    assert all(share > 0 for share in shares), shares
