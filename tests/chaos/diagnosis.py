"""What a failed or dirty fault run leaves behind for whoever reads CI's log: where events wait (the
outboxes, the broker's queues) and what each process said last, read while the suite still runs."""

from __future__ import annotations

import json

from tests.support.rabbit_node import RabbitCluster, RabbitNode
from tests.support.suite import SERVICES, Suite

LOG_LINES = 8  # per process: its last warnings and errors (CI shows the log's tail)


def snapshot(suite: Suite, own: RabbitNode | RabbitCluster | None) -> str:
    parts = ["--- outboxes (status: rows)", *_outboxes(suite), "--- queues", *_queues(suite, own)]
    parts += ["--- dead letters (collected into each service's table)", *_dead_letters(suite)]
    for name, process in suite.processes.items():
        lines = [line for line in process.log().splitlines() if _worth_showing(line)]
        parts += [f"--- {name}: its last {LOG_LINES} warnings and errors", *lines[-LOG_LINES:]]
    return "\n".join(parts)


def _outboxes(suite: Suite) -> list[str]:
    lines = []
    for service in SERVICES:
        try:
            rows = suite.sql(service, "SELECT status, count(*) FROM bus_outboxmessage GROUP BY status")
        except Exception as exc:  # noqa: BLE001 - a diagnosis reports what it cannot read
            rows = [("unreadable", f"{type(exc).__name__}: {exc}")]
        lines.append(f"{service}: " + ", ".join(f"{status}: {count}" for status, count in sorted(rows)))
    return lines


def _dead_letters(suite: Suite) -> list[str]:
    lines = []
    for service in SERVICES:
        try:
            rows = suite.sql(
                service,
                "SELECT kind, event_type, left(reason, 160) FROM bus_deadletter ORDER BY parked_at LIMIT 8",
            )
        except Exception as exc:  # noqa: BLE001 - a diagnosis reports what it cannot read
            rows = [("unreadable", "", f"{type(exc).__name__}: {exc}")]
        lines += [f"{service}: [{kind}] {event_type}: {reason}" for kind, event_type, reason in rows]
    return lines


def _queues(suite: Suite, own: RabbitNode | RabbitCluster | None) -> list[str]:
    columns = ("name", "messages_ready", "messages_unacknowledged", "consumers")
    try:
        node = own.live() if isinstance(own, RabbitCluster) else own
        ctl = node.ctl if node is not None else suite.broker.ctl
        listed = json.loads(ctl("list_queues", "-p", suite.vhost, *columns, "--formatter", "json"))
    except Exception as exc:  # noqa: BLE001 - a diagnosis reports what it cannot read
        return [f"unreadable: {type(exc).__name__}: {exc}"]
    busy = [q for q in listed if any(q.get(c) for c in columns[1:])]  # Celery's empty delay levels left out
    return [" ".join(f"{c}={q.get(c)}" for c in columns) for q in sorted(busy, key=lambda q: q["name"])]


def _worth_showing(line: str) -> bool:
    if "django.request" in line or "py.warnings" in line:  # the API's 409s and 404s, deprecations
        return False
    return any(level in line for level in (" WARNING ", " ERROR ", " CRITICAL ", "Traceback", "Error:"))
