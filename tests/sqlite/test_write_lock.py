"""On SQLite, a running batch holds the database's one write lock: a slow one must give it up (its
time limit) before the API's writes stop waiting for it (the busy timeout), or they fail."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

import pytest

from common.contracts import Envelope
from tests.reliability.conftest import PROBE_SETTINGS
from tests.support.polling import wait_for
from tests.support.probe.contract import Poked
from tests.support.suite import running

pytestmark = pytest.mark.slow

# the probe's tables in SQLite's dialect (tests/support/probe/handlers.py)
SCHEMA = (
    "CREATE TABLE probe_attempt (service text, key text, at text DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE probe_effect (service text, key text, event_id text, at text DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE probe_fixed (key text PRIMARY KEY)",
)


def write_locked(path: Path) -> bool:
    """Whether another connection holds the write lock right now (we do not wait for it)."""
    with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as conn:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            return True
        conn.execute("ROLLBACK")
        return False


def test_a_slow_batch_lets_the_api_write_before_its_busy_timeout(tmp_path: Path) -> None:
    with running(tmp_path, start=False, database="sqlite") as suite:
        # given the shipped defaults on SQLite, with the probe beside orders' real handlers
        for statement in SCHEMA:
            suite.sql("orders", statement)
        for name in ("users-api", "users-relay", "orders-api", "orders-relay"):
            suite.start_entry(name)
        suite.start_worker("orders", settings_module=PROBE_SETTINGS["orders"])
        suite.wait_ready("users", ("api", "relay"))
        suite.wait_ready("orders")
        _, _, token = suite.sign_up("lock")
        suite.place_order(token, what="an order before the slow event")

        # when a handler writes, then takes two minutes before its transaction commits
        poked = Poked(key=uuid.uuid4().hex, behaviour="slow", target="orders", seconds=120)
        suite.publish_event(
            Envelope.wrap(poked, producer="test", aggregate_id=poked.key, aggregate_version=1)
        )
        database = suite.workdir / "var" / "orders.sqlite3"
        wait_for(lambda: write_locked(database), timeout=30, what="the slow batch to hold the write lock")

        # then an order placed meanwhile waits for the lock, and gets it: the batch gave it up
        status, body = suite.call(
            "POST",
            "orders",
            "/api/orders/",
            {"items": [{"sku": "A", "quantity": 1, "unit_price": "1.00"}]},
            token=token,
            timeout=50,
        )
        assert status == 201, (status, body)
