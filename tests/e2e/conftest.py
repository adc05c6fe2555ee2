from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import wait_log
from tests.support.suite import CROWD_THROTTLES, Suite


@pytest.fixture(scope="session")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """The running suite, shared by the end-to-end tests that only observe it (no faults)."""
    settings = {
        # throttling is tested in the users unit tests; here many sign-ups (and the fuzzer) must pass
        **CROWD_THROTTLES,
        "THROTTLE_PASSWORD": "10000/min",
        # logs as in production, with a line per published event (dispatched on commit, or relayed)
        "LOG_FORMAT": "json",
        "LOG_LEVELS": "common.bus.outbox.on_commit=DEBUG,common.bus.outbox.relay=DEBUG",
    }
    running = Suite(workdir=Path(tmp_path_factory.mktemp("suite")), settings=settings)
    try:
        running.setup()
        running.start()
        yield running
    finally:
        running.teardown()


FLOWER_LOGIN = ("operator", "flower-test-password")


@pytest.fixture(scope="session")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """The suite as compose and Kubernetes run it: production settings, one broker user per service
    with least privilege, Flower with its monitoring user behind basic auth."""
    settings = {
        "APP_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "METRICS_TOKEN": secrets.token_urlsafe(24),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "LOG_FORMAT": "json",
        **CROWD_THROTTLES,
        # a handler failing transiently is parked at once, so the admin has a dead letter to replay
        "BUS_RETRY_MAX_ATTEMPTS": "1",
    }
    running = Suite(workdir=Path(tmp_path_factory.mktemp("locked")), settings=settings, least_privilege=True)
    try:
        running.setup()
        running.manage("users", "collectstatic", "--noinput", "-v0")
        running.start()
        flower = running.start_flower(basic_auth=":".join(FLOWER_LOGIN))
        wait_log(flower, "Visit me at")
        yield running
    finally:
        running.teardown()
