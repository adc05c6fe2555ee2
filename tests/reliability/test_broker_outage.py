"""G1 through a broker outage, in the shipped configuration: every process of the suite reaches
RabbitMQ through a TCP proxy the test owns, and the test cuts it. Sign-ups go on being accepted
(their events wait in the outbox, which the gauge shows), readiness turns 503 naming the broker,
and once the link is back everything arrives, once, and readiness and the gauge recover. (Workers
whose pool processes have just died surviving a broker restart, celery/celery#9250: the fault
matrix's "pool kills, then broker restart".)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.checker import History, converge
from tests.support.load import shop, sign_up
from tests.support.metrics import value
from tests.support.polling import wait_for
from tests.support.suite import CROWD_THROTTLES, KINDS, SERVICES, Suite, running

pytestmark = pytest.mark.slow
DURING_OUTAGE = 5


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    workdir = Path(tmp_path_factory.mktemp("broker-outage"))
    with running(workdir, settings=CROWD_THROTTLES, proxied=True) as started:
        yield started


@pytest.fixture(scope="module")
def history() -> History:
    """What the APIs acknowledged over the whole module (its tests share one suite)."""
    return History()


def readiness(suite: Suite, process: str) -> tuple[int, str]:
    if process.endswith("-api"):
        status, body = suite.call("GET", process.removesuffix("-api"), "/readyz")
        return status, json.dumps(body)
    return suite.http(process, "/readyz")


PROCESSES = [f"{service}-{kind}" for service in SERVICES for kind in KINDS]


def pending(suite: Suite, service: str) -> float:
    return value(suite.metrics(f"{service}-api"), "suite_outbox_pending", service=service)


def test_a_broker_outage_loses_nothing_and_readiness_and_gauges_say_so(
    proxied: Suite, history: History
) -> None:
    assert proxied.broker_proxy is not None
    # given a suite that works, and says so
    first = sign_up(proxied, history, "before")
    shop(proxied, history, *first)
    for process in PROCESSES:
        assert readiness(proxied, process)[0] == 200, process
    assert pending(proxied, "users") == 0

    # when every process loses its broker connection
    proxied.broker_proxy.cut()

    # then the APIs still accept sign-ups: their events wait in the outbox, and the gauge shows them
    during = [sign_up(proxied, history, f"during{n}") for n in range(DURING_OUTAGE)]
    wait_for(lambda: pending(proxied, "users") >= DURING_OUTAGE, what="the pending gauge to show the backlog")
    # and every process says it is not ready, naming the broker
    for process in PROCESSES:
        _, body = wait_for(
            lambda p=process: (r := readiness(proxied, p))[0] == 503 and r,  # type: ignore[misc]
            timeout=60,
            what=f"{process} to report itself not ready",
        )
        assert "broker" in body.lower(), (process, body)

    # when the link comes back
    proxied.broker_proxy.restore()

    # then the backlog is published, every customer can shop, and every effect is there once
    for user_id, token in during:
        shop(proxied, history, user_id, token)
    report = converge(proxied, history, timeout=180)
    print(f"\n{report}")
    assert report.clean(), str(report)
    # and readiness and the gauges recover
    for process in PROCESSES:
        wait_for(lambda p=process: readiness(proxied, p)[0] == 200, timeout=60, what=f"{process} ready again")  # type: ignore[misc]
    for service in SERVICES:
        wait_for(lambda s=service: pending(proxied, s) == 0, timeout=60, what=f"{service} outbox drained")  # type: ignore[misc]
