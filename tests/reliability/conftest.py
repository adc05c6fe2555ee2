from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.probe.handlers import SCHEMA
from tests.support.processes import wait_log
from tests.support.suite import Suite

PROBE_SETTINGS = {
    "orders": "tests.support.probe.orders_settings",
    "notifications": "tests.support.probe.notifications_settings",
}
# Small budgets so faults play out in seconds: 3 attempts 1 s then 2 s apart; 2 redeliveries.
FAST_FAILURES = {
    "BUS_RETRY_MAX_ATTEMPTS": "3",
    "BUS_RETRY_BASE_SECONDS": "1",
    "BUS_DELIVERY_LIMIT": "2",
}


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """Workers of orders and notifications with the probe handler beside their real ones."""
    suite = Suite(workdir=Path(tmp_path_factory.mktemp("probes")), settings=FAST_FAILURES)
    try:
        suite.setup()
        for service, settings_module in PROBE_SETTINGS.items():
            suite.sql(service, SCHEMA)
            suite.start_worker(service, settings_module=settings_module)
        for service in PROBE_SETTINGS:
            wait_log(suite.processes[f"{service}-worker"], "ready.")
        yield suite
    finally:
        suite.teardown()
