"""Input fields that accept exactly what the OpenAPI schema says: strings only where the schema says
string (DRF would turn 0 into "0"), and money only as a decimal string (never a float)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

MONEY_PATTERN = r"^\d{1,10}(\.\d{1,2})?$"


class _StrictString:
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.", code="not_a_string")
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(_StrictString, serializers.CharField):
    pass


class StrictEmailField(_StrictString, serializers.EmailField):
    pass


class StrictRegexField(_StrictString, serializers.RegexField):
    pass


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": MONEY_PATTERN,
        "example": "9.99",
        "description": "An amount as a decimal string with at most two decimals, never a number.",
    }
)
class MoneyField(serializers.DecimalField):
    default_error_messages = {
        "not_money": 'Send an amount as a string with at most two decimals, e.g. "9.99".',
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=12, decimal_places=2, min_value=Decimal("0"), **kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        # ASCII digits only, as the schema's pattern means (Python's \d also takes "٩")
        if not isinstance(data, str) or not re.fullmatch(MONEY_PATTERN, data, re.ASCII):
            self.fail("not_money")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: DRF would also take "3", 3.0, true and Arabic-Indic digits ("٣")."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class BoundedListField(serializers.ListField):
    """Refuses a list over `max_length` before it validates any element: DRF validates them all
    first, so 10,000 bad lines gave a 10,000-entry error body."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, list) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return list(super().to_internal_value(data))
