"""G1 and G2 through worker crashes, in the shipped configuration (dispatch on commit, consumer
batching): a crowd of customers signs up, orders and cancels while the orders and notifications
workers' pool processes are SIGKILLed, and then a whole worker (main process and pool); the test
restarts the dead worker as a supervisor would. Nothing acknowledged is lost, nothing applied twice.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.checker import History, converge
from tests.support.load import journey
from tests.support.polling import wait_for
from tests.support.processes import pool_processes
from tests.support.suite import CROWD_THROTTLES, SERVICES, Suite, running

pytestmark = pytest.mark.slow
CUSTOMERS = 16
CONSUMERS = ("orders", "notifications")
POOL = 2  # WORKER_CONCURRENCY of every suite (tests/support/suite.py)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    with running(Path(tmp_path_factory.mktemp("worker-kill")), settings=CROWD_THROTTLES) as started:
        yield started


def test_workers_killed_mid_load_lose_nothing_and_apply_nothing_twice(suite: Suite) -> None:
    history = History()
    with ThreadPoolExecutor(max_workers=6) as clients:
        journeys = [clients.submit(journey, suite, history, n) for n in range(CUSTOMERS)]

        # when, while customers come and go, every pool process of both consumers dies, twice
        for round_ in (1, 2):
            wait_for(
                lambda r=round_: history.operations >= r * CUSTOMERS // 2,  # type: ignore[misc]
                timeout=120,
                what=f"a share of the journeys before kill round {round_}",
            )
            for service in CONSUMERS:
                worker = suite.processes[f"{service}-worker"]
                children = wait_for(  # the pool the last round killed is respawned by then
                    lambda w=worker: len(p := pool_processes(w.pid)) == POOL and p,  # type: ignore[misc]
                    timeout=60,
                    what=f"the {service} worker's pool processes",
                )
                for child in children:
                    os.kill(child, signal.SIGKILL)

        # and then a whole worker, main process and pool, which the supervisor restarts
        victim = suite.processes["notifications-worker"]
        os.killpg(victim.pid, signal.SIGKILL)
        assert victim.popen is not None
        victim.popen.wait(10)
        suite.start_worker("notifications")
        suite.wait_ready("notifications", ("worker",))
        for done in journeys:
            done.result(timeout=300)

    # then every acknowledged effect is there once, and nothing else
    report = converge(suite, history, timeout=180)
    print(f"\n{report}\nconverged {report.seconds_to_converge:.1f}s after the last acknowledgement")
    # mail is checked for loss only: a pool process killed between sending a mail and committing
    # sends it again on redelivery, until mail is sent after the commit
    assert report.counts(mail=False) == {"lost": 0, "duplicated": 0, "unexpected": 0}, str(report)
    assert report.counts()["lost"] == 0, str(report)
    for service in CONSUMERS:
        assert suite.processes[f"{service}-worker"].alive(), f"{service} worker died"
    for service in SERVICES:
        assert "is empty" in suite.manage(service, "dlq", "list")
