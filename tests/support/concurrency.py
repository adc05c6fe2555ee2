"""Helpers for tests that race two transactions in threads of the test process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection


def in_own_connection(work: Callable[[], Any]) -> Callable[[], Any]:
    """`work` for a thread: its own database connection, closed when done."""

    def run() -> Any:
        try:
            return work()
        finally:
            connection.close()  # this thread's

    return run


def waiting_on_a_lock() -> bool:
    """Whether a session of this test database waits on a lock right now (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = cursor.fetchone()
        return bool(row and row[0])
