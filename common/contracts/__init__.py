"""Every event contract of the suite. Importing this package registers them all."""

from common.contracts.base import (
    Contract,
    UnknownEventType,
    UnknownEventVersion,
    contract_for,
    registered,
)
from common.contracts.envelope import Envelope
from common.contracts.orders import OrderLine, OrderPlaced
from common.contracts.users import UserCreated

__all__ = [
    "Contract",
    "Envelope",
    "OrderLine",
    "OrderPlaced",
    "UnknownEventType",
    "UnknownEventVersion",
    "UserCreated",
    "contract_for",
    "registered",
]
