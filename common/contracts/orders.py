"""Events published by the orders service."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.contracts.base import Contract, Data, contract, upcaster
from common.contracts.types import Currency, Money, Quantity, Sku, Total


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    quantity: Quantity
    unit_price: Money


class _Lines(Contract):
    lines: tuple[OrderLine, ...] = Field(min_length=1)
    total: Total

    @model_validator(mode="after")
    def _total_is_sum_of_lines(self) -> Self:
        expected = sum((line.unit_price * line.quantity for line in self.lines), start=Decimal("0"))
        if self.total != expected:
            raise ValueError(f"total {self.total} is not the sum of the lines ({expected})")
        return self


@contract("order.placed", version=1, producer="orders")
class OrderPlacedV1(_Lines):
    """Released; superseded by v2 (which names the currency)."""

    order_id: UUID
    customer_id: UUID


@contract("order.placed", version=2, producer="orders")
class OrderPlaced(_Lines):
    order_id: UUID
    customer_id: UUID
    currency: Currency


@upcaster("order.placed", from_version=1)
def _order_placed_v1_to_v2(data: Data) -> Data:
    """Every v1 order was in euros: the currency was implied before v2 said it."""
    return {**data, "currency": "EUR"}


@contract("order.cancelled", version=1, producer="orders")
class OrderCancelled(Contract):
    order_id: UUID
    customer_id: UUID
    reason: Literal["customer", "account_deleted", "operator"]
