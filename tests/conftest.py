"""Markers by folder, and a header that shows which broker and database a session really used."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from common.bus.amqp.connection import redacted

KINDS = ("unit", "integration", "e2e", "reliability")


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"broker: {redacted(os.environ.get('AMQP_URL', '(default)'))}"]
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE")
    if settings_module and config.pluginmanager.hasplugin("django"):
        from django.conf import settings

        db = settings.DATABASES["default"]
        lines.append(f"django: {settings_module}, database {db['ENGINE']} {db.get('NAME')}")
    return lines


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for kind in KINDS:
            if kind in parts:
                item.add_marker(getattr(pytest.mark, kind))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's outcome on the item, so fixtures can add logs to a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _process_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """When a test that used a running suite (`tests.support.suite.Suite`) fails, print its
    processes' logs."""
    yield
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    for name, used in getattr(request.node, "funcargs", {}).items():
        if type(used).__name__ == "Suite" and callable(getattr(used, "logs", None)):
            print(f"\n===== process logs of {name} after {request.node.name} =====\n{used.logs()}")


@pytest.fixture(autouse=True)
def _fresh_throttles(request: pytest.FixtureRequest) -> None:
    """Throttle counters live in the cache, a table in the service's database: each test that may
    reach a throttled route (it has the database) starts with none."""
    if not (os.environ.get("DJANGO_SETTINGS_MODULE") and request.config.pluginmanager.hasplugin("django")):
        return
    if request.node.get_closest_marker("django_db") is None:
        return
    from django.core.cache import cache

    cache.clear()
