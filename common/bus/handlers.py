"""Handler registry: a handler is a plain typed function of the parsed contract and its envelope."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from common.contracts.base import Contract, UnknownEventType, UnknownEventVersion
from common.contracts.envelope import Envelope

C = TypeVar("C", bound=Contract)
Handler = Callable[[C, Envelope], None]


@dataclass(frozen=True)
class Subscription:
    contract: type[Contract]
    handler: Callable[[Any, Envelope], None]
    # Exceptions worth another attempt later (the database is away, a replica is not there yet).
    transient: tuple[type[BaseException], ...]


class HandlerRegistry:
    """The events one service handles. Its event types decide the service queue's bindings."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._subscriptions: dict[tuple[str, int], Subscription] = {}

    def handles(
        self, contract: type[C], *, transient: tuple[type[BaseException], ...] = ()
    ) -> Callable[[Handler[C]], Handler[C]]:
        def register(handler: Handler[C]) -> Handler[C]:
            key = (contract.event_type, contract.version)
            if key in self._subscriptions:
                raise ValueError(f"{self.service} already handles {key[0]} v{key[1]}")
            self._subscriptions[key] = Subscription(contract, handler, transient)
            return handler

        return register

    def include(self, other: HandlerRegistry) -> None:
        """Handle everything `other` handles too (composing registries, e.g. for test probes)."""
        for (event_type, version), subscription in other._subscriptions.items():
            self.handles(subscription.contract, transient=subscription.transient)(subscription.handler)

    def event_types(self) -> list[str]:
        return sorted({event_type for event_type, _ in self._subscriptions})

    def subscription(self, event_type: str, version: int) -> Subscription:
        try:
            return self._subscriptions[(event_type, version)]
        except KeyError:
            versions = sorted(v for t, v in self._subscriptions if t == event_type)
            if versions:
                raise UnknownEventVersion(
                    f"{self.service} handles {event_type} in versions {versions}, not {version}"
                ) from None
            raise UnknownEventType(f"{self.service} does not handle {event_type!r}") from None
