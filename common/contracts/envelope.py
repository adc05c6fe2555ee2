"""The envelope every event travels in: identity, ordering and tracing around a contract's data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from common.contracts.base import Contract, contract_for

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID
    type: str = Field(pattern=EVENT_TYPE_PATTERN, max_length=100)
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1, max_length=50)
    aggregate_id: str = Field(min_length=1, max_length=200)
    aggregate_version: int = Field(ge=1)
    correlation_id: UUID
    causation_id: UUID | None = None
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        event: Contract,
        *,
        producer: str,
        aggregate_id: str,
        aggregate_version: int,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
    ) -> Envelope:
        """A new envelope around `event`; a fresh correlation id when none is in flight."""
        event_id = uuid.uuid4()
        return cls(
            id=event_id,
            type=event.event_type,
            version=event.version,
            occurred_at=datetime.now(UTC),
            producer=producer,
            aggregate_id=aggregate_id,
            aggregate_version=aggregate_version,
            correlation_id=correlation_id or event_id,
            causation_id=causation_id,
            data=event.model_dump(mode="json"),
        )

    def contract(self) -> Contract:
        """Parse `data` with the registered contract of this type and version."""
        return contract_for(self.type, self.version).model_validate(self.data)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
