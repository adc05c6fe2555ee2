"""G2, G3, G4 with real worker processes and real faults: SIGKILL mid-handler, duplicates, poison
messages, transient failures, handlers that always fail or kill their process."""

from __future__ import annotations

import json
import os
import pickle
import signal
import uuid
import zlib
from functools import partial
from typing import Any

import pytest
from kombu import Connection, Queue

from common.contracts import Envelope
from tests.reliability.conftest import PROBE_SETTINGS
from tests.support.metrics import counter
from tests.support.polling import wait_for
from tests.support.probe.contract import Poked
from tests.support.processes import Process, wait_log
from tests.support.suite import Suite

pytestmark = pytest.mark.slow


def poke(suite: Suite, **fields: Any) -> Envelope:
    event = Poked(key=fields.pop("key", uuid.uuid4().hex), **fields)
    envelope = Envelope.wrap(event, producer="test", aggregate_id=event.key, aggregate_version=1)
    suite.publish_event(envelope)
    return envelope


def key_of(envelope: Envelope) -> str:
    return str(envelope.data["key"])


def effects(suite: Suite, service: str, key: str) -> int:
    return int(suite.sql(service, "SELECT count(*) FROM probe_effect WHERE key = %s", (key,))[0][0])


def attempts(suite: Suite, service: str, key: str) -> list[Any]:
    rows = suite.sql(service, "SELECT at FROM probe_attempt WHERE key = %s ORDER BY at", (key,))
    return [r[0] for r in rows]


def dlq(suite: Suite, service: str) -> str:
    return suite.manage(service, "dlq", "list")


def skipped_once(worker: Process, event: str) -> bool:
    return worker.log().count(f"duplicate {event} skipped") == 1


def dead_letter_ids(listing: str) -> list[str]:
    return [line.split()[0] for line in listing.splitlines()[1:-1]]


def test_a_duplicate_publish_has_one_effect(probes: Suite) -> None:
    # given one event published twice with the same id
    envelope = poke(probes)
    probes.publish_event(envelope)
    key = key_of(envelope)

    # then both services apply it once and skip the copy
    for service in PROBE_SETTINGS:
        wait_for(
            partial(skipped_once, probes.processes[f"{service}-worker"], f"probe.poked {envelope.id}"),
            what=f"{service} skipping the copy",
        )
        assert effects(probes, service, key) == 1


def test_a_worker_killed_mid_handler_applies_the_effect_exactly_once(probes: Suite) -> None:
    # given a handler that has written its effect but not committed yet
    envelope = poke(probes, behaviour="slow", seconds=30)
    key = key_of(envelope)
    wait_for(lambda: attempts(probes, "orders", key), what="the handler to start")

    # when the whole worker (main process and pool) is SIGKILLed
    worker = probes.processes["orders-worker"]
    os.killpg(worker.pid, signal.SIGKILL)
    worker.popen.wait(10)  # type: ignore[union-attr]
    assert effects(probes, "orders", key) == 0  # the uncommitted effect died with it

    # then a new worker gets the event again and applies it exactly once
    replacement = probes.start_worker("orders", settings_module=PROBE_SETTINGS["orders"])
    wait_log(replacement, "ready.")
    wait_for(lambda: effects(probes, "orders", key) == 1, timeout=60, what="the redelivered effect")
    assert len(attempts(probes, "orders", key)) == 2
    assert effects(probes, "notifications", key) == 1


def test_poison_messages_are_parked_with_their_reason_and_do_not_block(probes: Suite) -> None:
    parked_before = probes.metrics("notifications-worker")

    # given garbage published straight to the events exchange, where only notifications listens
    def headers(task: str = "order.placed") -> dict[str, Any]:
        return {"task": task, "id": str(uuid.uuid4()), "lang": "py", "retries": 0}

    good = poke(probes, key="control", behaviour="ok")
    valid = Envelope.model_validate(good.model_dump()).to_json_dict()
    poison = {
        "not JSON": dict(body=b"{not json", headers=headers()),
        "wrong shape": dict(body=json.dumps({"foo": 1}).encode(), headers=headers()),
        "wrong type": dict(
            body=json.dumps(
                [[{**valid, "type": "order.placed", "aggregate_version": "two"}], {}, {}]
            ).encode(),
            headers=headers(),
        ),
        "unknown type": dict(body=json.dumps([[valid], {}, {}]).encode(), headers=headers("user.exploded")),
        "pickle": dict(
            body=pickle.dumps([[1], {}, {}]), headers=headers(), content_type="application/x-python-serialize"
        ),
        # 100 KiB that kombu would inflate to 100 MiB in the worker's main process, before any check
        "compression bomb": dict(
            body=zlib.compress(bytes(100 << 20), 9),
            headers={**headers(), "compression": "application/x-gzip"},
        ),
    }
    for message in poison.values():
        probes.publish(routing_key="order.placed", **message)  # type: ignore[arg-type]

    # then each is in the notifications dead-letter queue with its reason, none in orders'
    expected = {
        "not JSON": "[undecodable] body is not valid JSON",
        "wrong shape": "[invalid] body must be a JSON array [args, kwargs, embed]",
        "wrong type": "aggregate_version: Input should be a valid integer",
        "unknown type": "[unknown-task] notifications does not handle events of type 'user.exploded'",
        "pickle": "content type 'application/x-python-serialize' refused (JSON only)",
        "compression bomb": "[invalid] compressed messages are refused, not inflated",
    }
    listing = wait_for(
        lambda: (out := dlq(probes, "notifications")).count("\n") >= len(poison) + 1 and out,
        what="a dead letter for each",
    )
    for name, reason in expected.items():
        assert reason in listing, f"{name}: {reason!r} not in\n{listing}"
    assert "is empty" in dlq(probes, "orders")
    parked = probes.metrics("notifications-worker")
    counted = {
        (kind, kind_type): counter(
            parked, "suite_events_dead_lettered_total", service="notifications", type=kind_type, kind=kind
        )
        - counter(
            parked_before,
            "suite_events_dead_lettered_total",
            service="notifications",
            type=kind_type,
            kind=kind,
        )
        for kind, kind_type in (
            ("undecodable", "order.placed"),
            ("invalid", "order.placed"),
            ("unknown-task", "unknown"),
        )
    }
    assert counted == {
        ("undecodable", "order.placed"): 1,
        ("invalid", "order.placed"): 4,
        ("unknown-task", "unknown"): 1,
    }

    # and a good event published after them is handled normally, the worker still running
    after = poke(probes)
    wait_for(lambda: effects(probes, "notifications", key_of(after)) == 1, what="the good event")
    assert probes.processes["notifications-worker"].alive()
    probes.manage("notifications", "dlq", "purge", "--noinput")


def test_a_transient_failure_is_retried_with_growing_delays_in_that_service_only(probes: Suite) -> None:
    # given a handler in orders that fails twice with a transient error, then succeeds
    retried_before = counter(
        probes.metrics("orders-worker"), "suite_events_retried_total", service="orders", type="probe.poked"
    )
    envelope = poke(probes, behaviour="fail-then-ok", failures=2, target="orders")
    key = key_of(envelope)

    # then orders applies it once, on its third attempt, each retry waiting longer
    wait_for(lambda: effects(probes, "orders", key) == 1, timeout=30, what="the effect after retries")
    first, second, third = attempts(probes, "orders", key)
    gaps = [(second - first).total_seconds(), (third - second).total_seconds()]
    assert gaps[0] >= 1 and gaps[1] >= 2 and gaps[1] > gaps[0], gaps
    # and the other service received the event once: orders' retries never reached it
    assert len(attempts(probes, "notifications", key)) == 1
    assert effects(probes, "notifications", key) == 1
    assert "is empty" in dlq(probes, "orders")
    retried = counter(
        probes.metrics("orders-worker"), "suite_events_retried_total", service="orders", type="probe.poked"
    )
    assert retried == retried_before + 2


def test_an_always_failing_handler_is_parked_then_replayed_once_fixed(probes: Suite) -> None:
    # given a handler that fails until an operator fixes the cause
    envelope = poke(probes, behaviour="fail-until-fixed", target="orders")
    key = key_of(envelope)

    # then after the configured 3 attempts it is parked, with why
    listing = wait_for(
        lambda: (out := dlq(probes, "orders")).count("probe.poked") and out,
        timeout=30,
        what="the dead letter",
    )
    assert "[retries-exhausted] gave up after 3 attempts: ProbeTransient" in listing
    assert len(attempts(probes, "orders", key)) == 3 and effects(probes, "orders", key) == 0
    [dead_letter_id] = dead_letter_ids(listing)
    details = probes.manage("orders", "dlq", "show", dead_letter_id[:8])
    for field in (
        "ProbeTransient",
        "first failure:",
        "last failure:",
        "attempts:       3",
        "service:        orders",
        "Traceback",
        str(envelope.id),
    ):
        assert field in details, field

    # when the cause is fixed and the dead letter replayed
    probes.sql("orders", "INSERT INTO probe_fixed (key) VALUES (%s)", (key,))
    assert "1 dead letter(s) sent back" in probes.manage("orders", "dlq", "replay", dead_letter_id)

    # then it is applied once; the dead-letter queue is empty; a second copy changes nothing
    wait_for(lambda: effects(probes, "orders", key) == 1, what="the replayed effect")
    assert "is empty" in dlq(probes, "orders")
    probes.publish_event(envelope)
    wait_for(
        lambda: f"duplicate probe.poked {envelope.id} skipped" in probes.processes["orders-worker"].log(),
        what="the copy to be skipped",
    )
    assert effects(probes, "orders", key) == 1
    assert effects(probes, "notifications", key) == 1


def test_a_handler_that_kills_its_process_is_parked_after_the_delivery_limit(probes: Suite) -> None:
    # given a handler that SIGKILLs its pool process every time
    envelope = poke(probes, behaviour="crash", target="orders")
    key = key_of(envelope)

    # then the worker parks it after BUS_DELIVERY_LIMIT crashes (2 sent back: 3 attempts)
    listing = wait_for(
        lambda: (out := dlq(probes, "orders")).count("probe.poked") and out,
        timeout=60,
        what="the crashing message to be parked",
    )
    [dead_letter_id] = dead_letter_ids(listing)
    details = probes.manage("orders", "dlq", "show", dead_letter_id)
    assert "crashed" in details and "died handling it 3 time(s)" in details, details
    assert len(attempts(probes, "orders", key)) == 3

    # and the worker keeps serving other messages
    assert probes.processes["orders-worker"].alive()
    other = poke(probes)
    wait_for(lambda: effects(probes, "orders", key_of(other)) == 1, what="the next event")
    probes.manage("orders", "dlq", "purge", "--noinput")


def test_returns_of_a_message_never_started_do_not_park_it(probes: Suite) -> None:
    # given orders' worker stopped and an event waiting for it
    probes.processes["orders-worker"].stop()
    envelope = poke(probes)
    key = key_of(envelope)

    # when it is delivered and returned unstarted more often than BUS_DELIVERY_LIMIT (2) and the
    # broker's old limit (5): what reconnects, warm shutdowns and scale-downs do to a prefetch
    url = probes.broker.amqp_url(probes.vhost)

    def delivered_then_returned() -> bool:
        with Connection(url) as conn:  # closed without an ack: the message is returned
            return Queue("orders.events", no_declare=True)(conn.default_channel).get(no_ack=False) is not None

    for _ in range(8):
        wait_for(delivered_then_returned, what="the event to be delivered")

    # then a worker handles it once, and nothing is parked
    worker = probes.start_worker("orders", settings_module=PROBE_SETTINGS["orders"])
    wait_log(worker, "ready.")
    wait_for(lambda: effects(probes, "orders", key) == 1, timeout=60, what="the effect")
    assert "probe.poked" not in dlq(probes, "orders")


def test_a_non_transient_error_is_parked_at_once(probes: Suite) -> None:
    envelope = poke(probes, behaviour="error", target="orders")
    listing = wait_for(
        lambda: (out := dlq(probes, "orders")).count("probe.poked") and out,
        timeout=30,
        what="the dead letter",
    )
    assert "[error] probe: a deliberate bug" in listing
    assert len(attempts(probes, "orders", key_of(envelope))) == 1
    probes.manage("orders", "dlq", "purge", "--noinput")
