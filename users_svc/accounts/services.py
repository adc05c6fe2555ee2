"""Writes of the users service. Each runs in one transaction with the events it publishes."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from common.api import ApplicationError
from common.bus.publisher import publish
from common.contracts import UserCreated
from common.contracts.types import normalize_email
from users_svc.accounts.models import User


def sign_up(*, email: str, password: str, first_name: str, last_name: str) -> User:
    try:
        email = normalize_email(email)
    except ValueError as exc:
        raise ApplicationError(f"Enter a valid email address: {exc}", field="email") from None
    candidate = User(email=email, first_name=first_name, last_name=last_name)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), field="password") from None
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email, password, first_name=first_name, last_name=last_name
            )
            publish(
                UserCreated(
                    user_id=user.id, email=user.email, first_name=first_name, last_name=last_name
                ),
                aggregate_id=str(user.id),
                aggregate_version=user.version,
            )
    except IntegrityError:
        raise ApplicationError(
            "A user with this email already exists.", field="email", code="email_taken"
        ) from None
    return user
