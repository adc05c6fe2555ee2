"""One JSON object per log line, saying which service and process wrote it and which correlation,
causation and event it belongs to (`LOG_FORMAT=json`; `plain` for reading in a terminal).

The ids come from the context (`common.observability.context`), or, for Celery's own lines about a
task, from the task being run (its id is the event id, its root id the correlation id).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from common.observability import context

# Which kind of process this is (api, worker, relay, flower…); entry points set it once at start.
ROLE = {"name": os.environ.get("SUITE_PROCESS", "api")}
FIELDS = ("correlation_id", "causation_id", "event_id", "event_type")


def set_role(name: str) -> None:
    ROLE["name"] = name


class ContextFilter(logging.Filter):
    """Adds service, process and the ids in flight to every record (never drops one)."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.process_role = ROLE["name"]
        ids: dict[str, str | None] = {
            "correlation_id": _str(context.correlation_id.get()),
            "causation_id": _str(context.causation_id.get()),
            "event_id": _str(context.event_id.get()),
            "event_type": context.event_type.get(),
        }
        if ids["event_id"] is None:
            ids.update(_from_current_task())
        for key, value in ids.items():
            if not hasattr(record, key) or getattr(record, key) is None:
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": getattr(record, "service", ""),
            "process": f"{getattr(record, 'process_role', ROLE['name'])}:{record.process}",
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _from_current_task() -> dict[str, str | None]:
    try:
        from celery._state import get_current_task
    except ImportError:  # pragma: no cover - celery is always installed here
        return {}
    task = get_current_task()
    request = getattr(task, "request", None)
    if task is None or request is None or not getattr(request, "id", None):
        return {}
    return {
        "event_id": request.id,
        "event_type": task.name,
        "correlation_id": getattr(request, "root_id", None),
        "causation_id": getattr(request, "parent_id", None),
    }


def config(service: str, *, fmt: str, level: str, levels: dict[str, str]) -> dict[str, Any]:
    """The LOGGING setting: every line through the context filter, in JSON or plain text."""
    plain = "%(asctime)s %(levelname)s %(name)s [%(process_role)s %(correlation_id)s] %(message)s"
    loggers: dict[str, Any] = {
        "django.db.backends": {"level": "WARNING"},
        # A line per message received, from the worker's main process, where no event is in flight:
        # the pool's own lines (with ids) say the same and more.
        "celery.worker.strategy": {"level": "WARNING"},
        "gunicorn.access": {"level": "WARNING" if fmt == "json" else "INFO"},
    }
    loggers.update({name: {"level": lvl} for name, lvl in levels.items()})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "common.observability.logging.ContextFilter", "service": service}},
        "formatters": {
            "json": {"()": "common.observability.logging.JsonFormatter"},
            "plain": {"format": plain},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": loggers,
    }
