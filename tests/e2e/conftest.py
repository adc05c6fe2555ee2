from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.suite import Suite


@pytest.fixture(scope="session")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """The running suite, shared by the end-to-end tests that only observe it (no faults)."""
    settings = {
        # throttling is tested in the users unit tests; here many sign-ups (and the fuzzer) must pass
        "THROTTLE_LOGIN": "10000/min",
        "THROTTLE_SIGNUP": "10000/min",
        "THROTTLE_PASSWORD": "10000/min",
        # logs as in production, with the relay's line per published event
        "LOG_FORMAT": "json",
        "LOG_LEVELS": "common.bus.relay=DEBUG",
    }
    running = Suite(workdir=Path(tmp_path_factory.mktemp("suite")), settings=settings)
    try:
        running.setup()
        running.start()
        yield running
    finally:
        running.teardown()


@pytest.fixture(autouse=True)
def logs_on_failure(request: pytest.FixtureRequest, suite: Suite) -> Iterator[None]:
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print(f"\n===== process logs after {request.node.name} =====\n{suite.logs()}")
