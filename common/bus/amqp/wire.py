"""The wire format: an event is a Celery task message (protocol 2, JSON only) named by its type.

Built here, not by `app.send_task`, so every publisher sends the same bytes without a Celery app and
the relay sends the envelope JSON it stored without parsing it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from kombu import compression
from kombu.exceptions import ContentDisallowed

from common.contracts.envelope import Envelope

CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"
PERSISTENT = 2
_EMBED = b'{"callbacks":null,"errbacks":null,"chain":null,"chord":null}'


def refuse_compression() -> None:
    """kombu inflates a message that carries a `compression` header as it receives it, before any
    content check and without a limit (a few hundred bytes of bz2 become gigabytes). Events are
    never compressed: every decompressor is replaced by a refusal, so such a message is parked,
    still compressed, with the reason."""
    for content_type in compression.encoders():
        found: Any = compression.get_encoder(content_type)  # (encoder, content type); stubs say otherwise
        compression.register(found[0], _refuse_compressed, content_type)


def _refuse_compressed(body: bytes) -> NoReturn:
    raise ContentDisallowed(f"compressed messages are refused, not inflated ({len(body)} bytes compressed)")


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
    """Task id = event id. `argsrepr` leaves the data out: Flower shows it, and data may hold PII."""
    # Only the protocol-2 headers a worker reads: the others default to what they would say.
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
