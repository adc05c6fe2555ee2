"""What is in flight in this thread or task: the correlation id, the event being handled, and the
event that caused that one.

Set by the HTTP middleware (a request starts a correlation) and by the consumer (an event continues
one); read by `publish` (a new event's causation is the event being handled, its correlation the one
in flight) and by the log formatter, so every line says what it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from uuid import UUID

correlation_id: ContextVar[UUID | None] = ContextVar("correlation_id", default=None)
causation_id: ContextVar[UUID | None] = ContextVar("causation_id", default=None)
event_id: ContextVar[UUID | None] = ContextVar("event_id", default=None)
event_type: ContextVar[str | None] = ContextVar("event_type", default=None)


@contextmanager
def in_flight(
    *,
    correlation: UUID | None,
    causation: UUID | None,
    event: UUID | None = None,
    kind: str | None = None,
) -> Iterator[None]:
    tokens = (
        correlation_id.set(correlation),
        causation_id.set(causation),
        event_id.set(event),
        event_type.set(kind),
    )
    try:
        yield
    finally:
        correlation_id.reset(tokens[0])
        causation_id.reset(tokens[1])
        event_id.reset(tokens[2])
        event_type.reset(tokens[3])


def _uuid(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


def message_context(headers: dict[str, object]) -> AbstractContextManager[None]:
    """The ids of a received task message (task id = event id, root id = correlation)."""
    return in_flight(
        correlation=_uuid(headers.get("root_id")),
        causation=_uuid(headers.get("parent_id")),
        event=_uuid(headers.get("id")),
        kind=str(headers["task"]) if headers.get("task") else None,
    )
