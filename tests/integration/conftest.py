from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from tests.support.processes import Process, free_port
from tests.support.tap import EventTap


@pytest.fixture
def relay_path_only(settings: Any) -> None:
    """For tests that prove the relay's path alone: the test process, which commits the rows, does
    not publish them on commit (the shipped default), so every row is the relay's to publish."""
    settings.BUS_DISPATCH_ON_COMMIT = False


@pytest.fixture
def tap() -> Iterator[EventTap]:
    """Every event published to the run's vhost from now on."""
    event_tap = EventTap()
    try:
        yield event_tap
    finally:
        event_tap.close()


def database_url_of_this_session() -> str:
    """The URL of the database this test session really uses (pytest-django's test database)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    return f"postgresql://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start `manage.py <this service> …` processes on the test database; all stopped at the end."""
    started: list[Process] = []

    def start(*args: str, name: str = "proc", **env: str) -> Process:
        ports = {"RELAY_HTTP_PORT": str(free_port()), "WORKER_HTTP_PORT": str(free_port())}
        full_env = dict(os.environ, **ports, **env)
        full_env[f"{settings.SERVICE_NAME.upper()}_DATABASE_URL"] = database_url_of_this_session()
        process = Process(
            name,
            [sys.executable, "manage.py", settings.SERVICE_NAME, *args],
            full_env,
            tmp_path / f"{name}.log",
        ).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
