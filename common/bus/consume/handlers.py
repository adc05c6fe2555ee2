"""Handler registry: a handler is a plain typed function of the parsed contract and its envelope,
for one version per event type (older versions are upcast to it, newer ones parked)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from common.contracts.base import Contract, UnknownEventType
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
        self._subscriptions: dict[str, Subscription] = {}

    def handles(
        self, contract: type[C], *, transient: tuple[type[BaseException], ...] = ()
    ) -> Callable[[Handler[C]], Handler[C]]:
        def register(handler: Handler[C]) -> Handler[C]:
            if contract.event_type in self._subscriptions:
                known = self._subscriptions[contract.event_type].contract.version
                raise ValueError(
                    f"{self.service} already handles {contract.event_type} (v{known}): one version "
                    "per event type; older versions are upcast to it"
                )
            self._subscriptions[contract.event_type] = Subscription(contract, handler, transient)
            return handler

        return register

    def include(self, other: HandlerRegistry) -> None:
        """Handle everything `other` handles too (composing registries, e.g. for test probes)."""
        for subscription in other._subscriptions.values():
            self.handles(subscription.contract, transient=subscription.transient)(subscription.handler)

    def event_types(self) -> list[str]:
        return sorted(self._subscriptions)

    def subscriptions(self) -> list[Subscription]:
        return [self._subscriptions[t] for t in self.event_types()]

    def subscription(self, event_type: str) -> Subscription:
        try:
            return self._subscriptions[event_type]
        except KeyError:
            raise UnknownEventType(f"{self.service} does not handle {event_type!r}") from None
