"""Events published by the users service."""

from __future__ import annotations

from uuid import UUID

from pydantic import EmailStr

from common.contracts.base import Contract, contract
from common.contracts.types import Name


@contract("user.created", version=1)
class UserCreated(Contract):
    user_id: UUID
    email: EmailStr
    first_name: Name
    last_name: Name
