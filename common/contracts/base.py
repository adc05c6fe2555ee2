"""Event contracts: typed, frozen value objects, registered by (type, version).

A contract is the `data` of an envelope. Producers can only publish a registered contract and consumers
receive the parsed model, never a dict, so a wrong field fails where it is written, not in another
service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """Base of every event payload. Past tense, immutable, no extra fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    event_type: ClassVar[str]
    version: ClassVar[int]


class UnknownEventType(LookupError):
    """No contract is registered under this event type."""


class UnknownEventVersion(LookupError):
    """The event type is known, but not in this schema version."""


C = TypeVar("C", bound=type[Contract])

_registry: dict[tuple[str, int], type[Contract]] = {}


def contract(event_type: str, version: int) -> Callable[[C], C]:
    """Register a contract class under its event type and schema version."""

    def register(cls: C) -> C:
        key = (event_type, version)
        if key in _registry and _registry[key] is not cls:
            raise ValueError(f"contract {event_type} v{version} is registered twice")
        cls.event_type = event_type
        cls.version = version
        _registry[key] = cls
        return cls

    return register


def contract_for(event_type: str, version: int) -> type[Contract]:
    try:
        return _registry[(event_type, version)]
    except KeyError:
        if any(t == event_type for t, _ in _registry):
            known = sorted(v for t, v in _registry if t == event_type)
            raise UnknownEventVersion(
                f"{event_type} has no schema version {version} (known: {known})"
            ) from None
        raise UnknownEventType(f"unknown event type {event_type!r}") from None


def registered() -> dict[tuple[str, int], type[Contract]]:
    return dict(_registry)
