"""The wire format: an event is a Celery task message (protocol 2) whose task name is its type.

Built here rather than through `app.send_task` so that any publisher (the relay, tests, tools) emits
exactly the same bytes without a Celery app, and so the relay can pipeline confirms on a raw channel.
Only JSON: the worker accepts nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from common.contracts.envelope import Envelope

CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"
PERSISTENT = 2


@dataclass(frozen=True)
class TaskMessage:
    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]
    routing_key: str


def task_message(envelope: dict[str, Any], *, origin: str) -> TaskMessage:
    """Encode an envelope (as its JSON dict) as a Celery task message, task id = event id.

    `argsrepr` names the event but leaves out its data: Flower shows it, and data may hold PII.
    """
    event_id = str(envelope["id"])
    event_type = str(envelope["type"])
    headers: dict[str, Any] = {
        "lang": "py",
        "task": event_type,
        "id": event_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": str(envelope.get("correlation_id") or event_id),
        "parent_id": str(envelope["causation_id"]) if envelope.get("causation_id") else None,
        "argsrepr": f"<{event_type} v{envelope.get('version')} {envelope.get('aggregate_id')}>",
        "kwargsrepr": "{}",
        "origin": origin,
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    body = json.dumps(
        [[envelope], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}],
        separators=(",", ":"),
    ).encode(CONTENT_ENCODING)
    properties = {
        "content_type": CONTENT_TYPE,
        "content_encoding": CONTENT_ENCODING,
        "delivery_mode": PERSISTENT,
        "correlation_id": event_id,
        "message_id": event_id,
        "priority": 0,
    }
    return TaskMessage(body=body, headers=headers, properties=properties, routing_key=event_type)


def envelope_message(envelope: Envelope, *, origin: str) -> TaskMessage:
    return task_message(envelope.to_json_dict(), origin=origin)
