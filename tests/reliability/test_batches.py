"""Batched consumption keeps every guarantee per event: a failing event among others, and a worker
SIGKILLed in the middle of a batch's transaction.

Batches form while every pool process is busy (2 in these workers, prefetch 8): two slow
"occupiers" hold both processes, the events published next wait together and go to the first free
process as one batch, in publication order.
"""

from __future__ import annotations

import os
import signal
from functools import partial

import pytest
from celery import Celery

from common.contracts import Envelope
from common.settings.env import env_bool
from tests.reliability.conftest import PROBE_SETTINGS
from tests.reliability.test_consumer_faults import attempts, dead_letter_ids, dlq, effects, key_of, poke
from tests.support.broker import queue_depth
from tests.support.metrics import counter
from tests.support.polling import wait_for
from tests.support.processes import wait_log
from tests.support.suite import Suite

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not env_bool("BUS_FAST_PATHS", True), reason="BUS_FAST_PATHS=0: no batches"),
]


def occupy_both_processes(suite: Suite, seconds: float) -> list[Envelope]:
    """One occupier at a time, each once the previous one runs: published together, two could be
    read back to back and go to one process as a batch, leaving the other free."""
    occupiers = []
    for _ in range(2):
        occupier = poke(suite, behaviour="slow", seconds=seconds)
        wait_for(lambda o=occupier: attempts(suite, "orders", key_of(o)), what="an occupier to start")  # type: ignore[misc]
        occupiers.append(occupier)
    return occupiers


def batched_events(suite: Suite) -> float:
    """Events that went to a pool process with others: the sizes' sum minus the batches of one."""
    samples = suite.metrics("orders-worker")
    total = counter(samples, "suite_consumer_batch_events_sum", service="orders")
    alone = counter(samples, "suite_consumer_batch_events_bucket", service="orders", le="1.0")
    return total - alone


def test_a_failing_event_in_a_batch_is_parked_alone_and_the_others_apply_once(probes: Suite) -> None:
    before = batched_events(probes)
    occupy_both_processes(probes, seconds=2)

    # given a batch of good events with a buggy one in the middle
    good = [poke(probes) for _ in range(3)]
    bad = poke(probes, behaviour="error")
    good += [poke(probes) for _ in range(2)]

    # then every good event is applied exactly once, in both services
    for envelope in good:
        key = key_of(envelope)
        wait_for(partial(lambda k: effects(probes, "orders", k) == 1, key), what=f"{key} applied")
        assert effects(probes, "notifications", key) == 1
    # and the bad one, rolled back with its batch and run again alone, is parked with its reason
    listing = wait_for(
        lambda: (out := dlq(probes, "orders")).count("probe.poked") and out, what="the dead letter"
    )
    assert "[error] probe: a deliberate bug" in listing
    assert effects(probes, "orders", key_of(bad)) == 0
    assert effects(probes, "notifications", key_of(bad)) == 1  # only orders' handler has the bug
    # and they did go as a batch, which the bad event rolled back
    assert batched_events(probes) - before >= 6
    assert (
        "rolled back (probe: a deliberate bug); handling its events one by one"
        in probes.processes["orders-worker"].log()
    )
    probes.manage("orders", "dlq", "purge", "--noinput")


def test_a_worker_killed_mid_batch_applies_every_event_of_it_exactly_once(probes: Suite) -> None:
    occupy_both_processes(probes, seconds=3)

    # given a batch whose first events are handled and whose last one is still in its handler
    quick = [poke(probes) for _ in range(4)]
    slow = poke(probes, behaviour="slow", seconds=8)
    wait_for(lambda: attempts(probes, "orders", key_of(slow)), what="the batch's last handler to start")
    assert all(attempts(probes, "orders", key_of(e)) for e in quick)
    # nothing is committed yet: the batch is one transaction
    assert all(effects(probes, "orders", key_of(e)) == 0 for e in (*quick, slow))

    # when the whole worker is SIGKILLed
    worker = probes.processes["orders-worker"]
    os.killpg(worker.pid, signal.SIGKILL)
    worker.popen.wait(10)  # type: ignore[union-attr]

    # then a new worker gets every event of the batch again and applies each exactly once
    replacement = probes.start_worker("orders", settings_module=PROBE_SETTINGS["orders"])
    wait_log(replacement, "ready.")
    for envelope in (*quick, slow):
        key = key_of(envelope)
        wait_for(partial(lambda k: effects(probes, "orders", k) == 1, key), timeout=60, what=f"{key} applied")
        assert len(attempts(probes, "orders", key)) == 2


def test_a_worker_stopped_gracefully_finishes_its_batches_and_leaves_the_waiting_events_to_the_next(
    probes: Suite,
) -> None:
    # given both processes busy for 3 s and events waiting for them
    occupiers = occupy_both_processes(probes, seconds=3)
    waiting = [poke(probes) for _ in range(5)]
    wait_for(
        lambda: (
            all(attempts(probes, "orders", key_of(e)) for e in occupiers)
            and queue_depth(probes.env["AMQP_URL"], "orders.events") == 0
        ),
        what="the occupiers to start and the others to reach the worker",
    )
    assert not any(attempts(probes, "orders", key_of(e)) for e in waiting)

    # when the worker is asked to stop (SIGTERM: a warm shutdown)
    probes.processes["orders-worker"].stop(timeout=30)

    # then a new worker handles every waiting event exactly once
    replacement = probes.start_worker("orders", settings_module=PROBE_SETTINGS["orders"])
    wait_log(replacement, "ready.")
    for envelope in waiting:
        key = key_of(envelope)
        wait_for(partial(lambda k: effects(probes, "orders", k) == 1, key), timeout=60, what=f"{key} applied")
        assert effects(probes, "notifications", key) == 1


def revoke_and_terminate(suite: Suite, event_id: str) -> None:
    """What `celery control revoke ID --terminate` and Flower's Terminate send to the workers."""
    app = Celery("operator", broker=suite.env["AMQP_URL"], set_as_current=False)
    try:
        app.control.revoke(event_id, terminate=True, signal="SIGKILL")
    finally:
        app.close()


def test_terminating_one_event_of_a_batch_parks_it_and_requeues_its_batch_mates(probes: Suite) -> None:
    occupy_both_processes(probes, seconds=2)

    # given a batch whose first events are handled and whose last one is still running
    mates = [poke(probes) for _ in range(3)]
    victim = poke(probes, behaviour="slow", seconds=20)
    wait_for(lambda: attempts(probes, "orders", key_of(victim)), what="the batch's last handler to start")

    # when an operator terminates that one event
    revoke_and_terminate(probes, str(victim.id))

    # then its batch-mates come back and are applied once each (not acked unhandled)
    for envelope in mates:
        key = key_of(envelope)
        wait_for(partial(lambda k: effects(probes, "orders", k) == 1, key), timeout=60, what=f"{key} applied")
    # and the terminated event is parked with why, to be replayed if the operator wants it
    listing = wait_for(
        lambda: (out := dlq(probes, "orders")).count("probe.poked") and out,
        what="the terminated event parked",
    )
    assert "[terminated]" in listing and listing.count("probe.poked") == 1, listing
    assert effects(probes, "orders", key_of(victim)) == 0
    probes.manage("orders", "dlq", "purge", "--noinput")


def test_a_batch_past_its_time_limits_parks_only_the_slow_event(probes: Suite) -> None:
    # given a worker whose handlers may take 2 s (soft), 4 s (hard)
    probes.processes["orders-worker"].stop()
    limited = probes.start_worker(
        "orders",
        settings_module=PROBE_SETTINGS["orders"],
        BUS_TASK_SOFT_TIME_LIMIT="2",
        BUS_TASK_TIME_LIMIT="4",
    )
    wait_log(limited, "ready.")
    try:
        occupy_both_processes(probes, seconds=1.5)  # within the soft limit
        # and a batch with one event that takes far longer
        quick = [poke(probes) for _ in range(3)]
        slow = poke(probes, behaviour="slow", seconds=30)
        quick += [poke(probes) for _ in range(2)]

        # then every quick event is applied once, however often the slow one ends the batch
        for envelope in quick:
            key = key_of(envelope)
            wait_for(
                partial(lambda k: effects(probes, "orders", k) == 1, key), timeout=60, what=f"{key} applied"
            )
        # and only the slow one is parked, saying it ran out of time
        listing = wait_for(
            lambda: (out := dlq(probes, "orders")).count("probe.poked") and out,
            timeout=60,
            what="the slow event parked",
        )
        assert listing.count("probe.poked") == 1 and "TimeLimitExceeded" in listing, listing
        [parked] = dead_letter_ids(listing)
        assert str(slow.id) in probes.manage("orders", "dlq", "show", parked)
        assert "Pool callback raised exception" not in limited.log()
    finally:
        probes.manage("orders", "dlq", "purge", "--noinput")
        limited.stop()
        wait_log(probes.start_worker("orders", settings_module=PROBE_SETTINGS["orders"]), "ready.")
