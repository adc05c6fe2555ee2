from __future__ import annotations

import os
import signal
import time

import psycopg
from django.db import connection

from common.bus.consume.handlers import HandlerRegistry
from common.contracts import Envelope
from tests.support.probe.contract import Poked

SCHEMA = """
CREATE TABLE IF NOT EXISTS probe_attempt (service text, key text, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS probe_effect (service text, key text, event_id uuid, at timestamptz DEFAULT now());
CREATE TABLE IF NOT EXISTS probe_fixed (key text PRIMARY KEY);
"""


class ProbeTransient(Exception):
    """A failure the probe declares worth retrying."""


def _own_connection(service: str) -> psycopg.Connection:
    return psycopg.connect(os.environ[f"{service.upper()}_DATABASE_URL"], autocommit=True)


def _record_attempt(service: str, key: str) -> tuple[int, bool]:
    """In a connection of its own (it stays when the handler's transaction rolls back); on SQLite,
    whose one write lock the handler's batch holds, in that transaction."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO probe_attempt (service, key) VALUES (%s, %s)", [service, key])
            cursor.execute(
                "SELECT count(*) FROM probe_attempt WHERE service = %s AND key = %s", [service, key]
            )
            (count,) = cursor.fetchone()
            cursor.execute("SELECT 1 FROM probe_fixed WHERE key = %s", [key])
            return int(count), cursor.fetchone() is not None
    with _own_connection(service) as conn:
        conn.execute("INSERT INTO probe_attempt (service, key) VALUES (%s, %s)", (service, key))
        row = conn.execute(
            "SELECT count(*) FROM probe_attempt WHERE service = %s AND key = %s", (service, key)
        ).fetchone()
        fixed = conn.execute("SELECT 1 FROM probe_fixed WHERE key = %s", (key,)).fetchone()
    return int(row[0]) if row else 0, fixed is not None


def probe_handler(service: str):  # type: ignore[no-untyped-def]
    def handle(event: Poked, envelope: Envelope) -> None:
        attempt, fixed = _record_attempt(service, event.key)
        mine = event.target == service
        if mine and event.behaviour == "fail-then-ok" and attempt <= event.failures:
            raise ProbeTransient(f"probe: failure {attempt} of {event.failures}")
        if mine and event.behaviour == "fail-until-fixed" and not fixed:
            raise ProbeTransient("probe: not fixed yet")
        if mine and event.behaviour == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if mine and event.behaviour == "error":
            raise ValueError("probe: a deliberate bug")
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO probe_effect (service, key, event_id) VALUES (%s, %s, %s)",
                [service, event.key, str(envelope.id)],
            )
        if mine and event.behaviour == "slow":
            time.sleep(event.seconds)  # the effect is written but not committed yet

    return handle


def with_probe(real: HandlerRegistry) -> HandlerRegistry:
    """The service's real handlers plus the probe."""
    registry = HandlerRegistry(real.service)
    registry.include(real)
    registry.handles(Poked, transient=(ProbeTransient,))(probe_handler(real.service))
    return registry
