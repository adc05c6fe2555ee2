"""What a process needs to serve (its readiness): the database, and what the parts of the suite add
(the bus: the broker)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection

# name -> a check returning why it is not ready, or None
_checks: dict[str, Callable[[], str | None]] = {}


def add_check(name: str, check: Callable[[], str | None]) -> None:
    _checks[name] = check


def problems() -> dict[str, str]:
    """What is not ready, by name (empty: ready)."""
    found = {}
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        found["database"] = f"{type(exc).__name__}: {exc}"
    for name, check in _checks.items():
        reason = check()
        if reason:
            found[name] = reason
    return found
