"""Field types shared by contracts and by the HTTP edges that feed them.

The edges validate with the same types as the contracts, so input a contract would reject is refused
with a 400 at the edge, not discovered in a consumer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import EmailStr, Field, TypeAdapter, ValidationError

Name = Annotated[str, Field(max_length=150)]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Quantity = Annotated[int, Field(ge=1, le=10_000)]
Money = Annotated[Decimal, Field(ge=Decimal("0"), max_digits=12, decimal_places=2)]
MAX_TOTAL = Decimal("999999999999.99")
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
Total = Annotated[Decimal, Field(ge=Decimal("0"), le=MAX_TOTAL, max_digits=14, decimal_places=2)]

_email = TypeAdapter(EmailStr)


def normalize_email(value: str) -> str:
    """The one email form the suite stores and publishes: validated, lower-cased.

    Raises ValueError with a readable reason when the contracts would refuse the address.
    """
    try:
        return _email.validate_python(value.strip()).lower()
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"]) from None
