"""Events published by the orders service."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.contracts.base import Contract, contract
from common.contracts.types import Money, Quantity, Sku, Total


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    quantity: Quantity
    unit_price: Money


@contract("order.placed", version=1)
class OrderPlaced(Contract):
    order_id: UUID
    customer_id: UUID
    lines: tuple[OrderLine, ...] = Field(min_length=1)
    total: Total

    @model_validator(mode="after")
    def _total_is_sum_of_lines(self) -> OrderPlaced:
        expected = sum((line.unit_price * line.quantity for line in self.lines), start=Decimal("0"))
        if self.total != expected:
            raise ValueError(f"total {self.total} is not the sum of the lines ({expected})")
        return self


@contract("order.cancelled", version=1)
class OrderCancelled(Contract):
    order_id: UUID
    customer_id: UUID
    reason: Literal["customer", "account_deleted", "operator"]
