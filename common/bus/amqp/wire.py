"""The wire format: an event is a Celery task message (protocol 2) whose task name is its type.

Built here rather than through `app.send_task` so that any publisher (the relay, tests, tools) emits
exactly the same bytes without a Celery app, and so the relay can send the envelope JSON it stored
without parsing it again. Only JSON: the worker accepts nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.contracts.envelope import Envelope

CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"
PERSISTENT = 2
_EMBED = b'{"callbacks":null,"errbacks":null,"chain":null,"chord":null}'


@dataclass(frozen=True)
class TaskMessage:
    """A message as sent, or as received (`of`) to be copied: a retry, a dead letter, a replay."""

    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]
    routing_key: str

    @classmethod
    def of(cls, message: Any) -> TaskMessage:
        """From a kombu message (a worker's, or one taken from a queue)."""
        props = dict(message.properties)
        props.pop("application_headers", None)
        props["content_type"] = message.content_type
        props["content_encoding"] = message.content_encoding
        return cls(
            body=message.body if isinstance(message.body, bytes) else str(message.body).encode(),
            headers=dict(message.headers or {}),
            properties=props,
            routing_key=str((message.delivery_info or {}).get("routing_key", "")),
        )


def task_message(
    *,
    event_id: str,
    event_type: str,
    aggregate_id: str,
    correlation_id: str,
    causation_id: str | None,
    envelope_json: str,
    origin: str,
) -> TaskMessage:
    """A Celery task message whose one argument is the envelope; task id = event id.

    `argsrepr` names the event but leaves out its data: Flower shows it, and data may hold PII.
    """
    # The protocol-2 headers a worker reads; the others default to what they would say (no ETA,
    # no expiry, no group, first attempt), and every header costs encoding time on the hot path.
    headers: dict[str, Any] = {
        "lang": "py",
        "task": event_type,
        "id": event_id,
        "root_id": correlation_id,
        "argsrepr": f"<{event_type} {aggregate_id}>",
        "origin": origin,
    }
    if causation_id:
        headers["parent_id"] = causation_id
    body = b"[[" + envelope_json.encode(CONTENT_ENCODING) + b"],{}," + _EMBED + b"]"
    properties = {
        "content_type": CONTENT_TYPE,
        "content_encoding": CONTENT_ENCODING,
        "delivery_mode": PERSISTENT,
        "message_id": event_id,
    }
    return TaskMessage(body=body, headers=headers, properties=properties, routing_key=event_type)


def envelope_message(envelope: Envelope, *, origin: str, envelope_json: str | None = None) -> TaskMessage:
    """`envelope_json`: the envelope already serialised (the outbox row's), not dumped twice."""
    return task_message(
        event_id=str(envelope.id),
        event_type=envelope.type,
        aggregate_id=envelope.aggregate_id,
        correlation_id=str(envelope.correlation_id),
        causation_id=str(envelope.causation_id) if envelope.causation_id else None,
        envelope_json=envelope_json or envelope.model_dump_json(),
        origin=origin,
    )
