"""Every event contract of the suite. Importing this package registers them all."""

from common.contracts.base import (
    Contract,
    UnknownEventType,
    UnknownEventVersion,
    contract_for,
    registered,
    upcast,
    versions_of,
)
from common.contracts.envelope import Envelope
from common.contracts.orders import OrderCancelled, OrderLine, OrderPlaced, OrderPlacedV1
from common.contracts.users import UserCreated, UserDeleted, UserUpdated

__all__ = [
    "Contract",
    "Envelope",
    "OrderCancelled",
    "OrderLine",
    "OrderPlaced",
    "OrderPlacedV1",
    "UnknownEventType",
    "UnknownEventVersion",
    "UserCreated",
    "UserDeleted",
    "UserUpdated",
    "contract_for",
    "registered",
    "upcast",
    "versions_of",
]
