"""Event contracts: typed, frozen value objects, registered by (type, version), with the upcasters
that turn an older version's data into the next one.

A contract is the `data` of an envelope. Producers can only publish a registered contract and consumers
receive the parsed model, never a dict, so a wrong field fails where it is written, not in another
service. A released version never changes (the compatibility gate enforces it): a breaking change is a
new version, plus an upcaster from the previous one so consumers written for the new version can still
read messages of the old one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

Data = dict[str, Any]
Upcaster = Callable[[Data], Data]


class Contract(BaseModel):
    """Base of every event payload. Past tense, immutable, no extra fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    event_type: ClassVar[str]
    version: ClassVar[int]
    producer: ClassVar[str]
    # it carries personal data (an address, a name): its published outbox rows are not kept
    personal: ClassVar[bool] = False


class UnknownEventType(LookupError):
    """No contract is registered under this event type."""


class UnknownEventVersion(LookupError):
    """The event type is known, but not in this schema version (or not reachable from it)."""


C = TypeVar("C", bound=type[Contract])

_contracts: dict[tuple[str, int], type[Contract]] = {}
_producers: dict[str, str] = {}  # event type -> its producer: one lookup per received message
_upcasters: dict[tuple[str, int], Upcaster] = {}


def contract(event_type: str, version: int, *, producer: str, personal: bool = False) -> Callable[[C], C]:
    """Register a contract class under its event type and schema version."""

    def register(cls: C) -> C:
        key = (event_type, version)
        if key in _contracts and _contracts[key] is not cls:
            raise ValueError(f"contract {event_type} v{version} is registered twice")
        cls.event_type, cls.version, cls.producer, cls.personal = event_type, version, producer, personal
        if _producers.setdefault(event_type, producer) != producer:
            raise ValueError(f"{event_type} has two producers: {_producers[event_type]} and {producer}")
        _contracts[key] = cls
        return cls

    return register


def upcaster(event_type: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register the function turning `event_type` data of `from_version` into `from_version + 1`."""

    def register(function: Upcaster) -> Upcaster:
        key = (event_type, from_version)
        if key in _upcasters:
            raise ValueError(f"{event_type} v{from_version} already has an upcaster")
        _upcasters[key] = function
        return function

    return register


def contract_for(event_type: str, version: int) -> type[Contract]:
    try:
        return _contracts[(event_type, version)]
    except KeyError:
        known = versions_of(event_type)
        if known:
            raise UnknownEventVersion(
                f"{event_type} has no schema version {version} (known: {known})"
            ) from None
        raise UnknownEventType(f"unknown event type {event_type!r}") from None


def versions_of(event_type: str) -> list[int]:
    return sorted(v for t, v in _contracts if t == event_type)


def upcast(event_type: str, data: Data, *, from_version: int, to_version: int) -> Data:
    """Data of `from_version` as `to_version` through the registered upcasters (one per step)."""
    if from_version > to_version:
        raise UnknownEventVersion(
            f"{event_type} v{from_version} is newer than v{to_version}, which this consumer was written "
            "for: deploy the consumer that handles it"
        )
    for version in range(from_version, to_version):
        step = _upcasters.get((event_type, version))
        if step is None:
            raise UnknownEventVersion(f"no upcaster from {event_type} v{version} to v{version + 1}")
        data = step(dict(data))
    return data


def registered() -> dict[tuple[str, int], type[Contract]]:
    return dict(sorted(_contracts.items()))


def personal_types() -> set[str]:
    """Event types any version of which carries personal data."""
    return {event_type for (event_type, _), cls in _contracts.items() if cls.personal}


def producer_of(event_type: str) -> str | None:
    """The service that produces `event_type` (every version has the same), or None if unknown."""
    return _producers.get(event_type)
