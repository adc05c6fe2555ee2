"""Events published by the users service. Each carries the user's state at its aggregate version,
so a replica can apply the newest event it has seen and ignore older ones, in any arrival order."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import EmailStr, Field

from common.contracts.base import Contract, contract
from common.contracts.types import Name

ProfileField = Literal["email", "first_name", "last_name"]


@contract("user.created", version=1, producer="users", personal=True)
class UserCreated(Contract):
    user_id: UUID
    email: EmailStr
    first_name: Name
    last_name: Name


@contract("user.updated", version=1, producer="users", personal=True)
class UserUpdated(Contract):
    """The whole profile after the change, and which fields changed."""

    user_id: UUID
    email: EmailStr
    first_name: Name
    last_name: Name
    changed: tuple[ProfileField, ...] = Field(min_length=1)


@contract("user.deleted", version=1, producer="users")
class UserDeleted(Contract):
    """The account is gone: replicas keep a tombstone and forget the personal data."""

    user_id: UUID
