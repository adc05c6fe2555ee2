"""What is in flight in this thread or task: the correlation id and the event that caused the work.

Set by the HTTP middleware (a request starts a correlation) and by the consumer adapter (an event
continues one); read by `publish` so every event a request or an event causes carries both ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

correlation_id: ContextVar[UUID | None] = ContextVar("correlation_id", default=None)
causation_id: ContextVar[UUID | None] = ContextVar("causation_id", default=None)


@contextmanager
def in_flight(*, correlation: UUID | None, causation: UUID | None) -> Iterator[None]:
    tokens = (correlation_id.set(correlation), causation_id.set(causation))
    try:
        yield
    finally:
        correlation_id.reset(tokens[0])
        causation_id.reset(tokens[1])
