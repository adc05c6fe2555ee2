"""Writes of the users service. Each runs in one transaction with the events it publishes, and
every event carries the user's new aggregate version."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from common.bus import publish
from common.contracts import UserCreated, UserDeleted, UserUpdated
from common.contracts.types import normalize_email
from common.contracts.users import ProfileField
from common.errors import ApplicationError
from users_svc.accounts.models import User
from users_svc.accounts.tokens import revoke_refresh_tokens

EMAIL_TAKEN = "A user with this email already exists."


def _valid_email(email: str) -> str:
    try:
        return normalize_email(email)
    except ValueError as exc:
        raise ApplicationError(f"Enter a valid email address: {exc}", field="email") from None


def _valid_password(password: str, user: User, field: str = "password") -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), field=field) from None


def sign_up(*, email: str, password: str, first_name: str, last_name: str) -> User:
    email = _valid_email(email)
    _valid_password(password, User(email=email, first_name=first_name, last_name=last_name))
    try:
        with transaction.atomic():
            user = User.objects.create_user(email, password, first_name=first_name, last_name=last_name)
            publish(
                UserCreated(user_id=user.id, email=user.email, first_name=first_name, last_name=last_name),
                aggregate_id=str(user.id),
                aggregate_version=user.version,
            )
    except IntegrityError:
        raise ApplicationError(EMAIL_TAKEN, field="email", code="email_taken") from None
    return user


def update_profile(
    *,
    user_id: UUID,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> User:
    """Change what was given; publish `user.updated` with the whole profile if anything changed."""
    wanted: dict[ProfileField, str] = {}
    if email is not None:
        wanted["email"] = _valid_email(email)
    if first_name is not None:
        wanted["first_name"] = first_name
    if last_name is not None:
        wanted["last_name"] = last_name
    try:
        with transaction.atomic():
            user = User.objects.select_for_update().get(pk=user_id)
            changed = tuple(f for f, value in wanted.items() if getattr(user, f) != value)
            if not changed:
                return user
            for field in changed:
                setattr(user, field, wanted[field])
            user.version += 1
            user.save(update_fields=[*changed, "version"])
            publish(
                UserUpdated(
                    user_id=user.id,
                    email=user.email,
                    first_name=user.first_name,
                    last_name=user.last_name,
                    changed=changed,
                ),
                aggregate_id=str(user.id),
                aggregate_version=user.version,
            )
    except IntegrityError:
        raise ApplicationError(EMAIL_TAKEN, field="email", code="email_taken") from None
    return user


def change_password(*, user: User, current_password: str, new_password: str) -> None:
    """Check the current password, set the new one, and revoke every refresh token issued so far."""
    if not user.check_password(current_password):
        raise ApplicationError(
            "The current password is not correct.", field="current_password", code="wrong_password"
        )
    _valid_password(new_password, user, field="new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        revoke_refresh_tokens(user.pk)


def delete_account(*, user_id: UUID) -> None:
    """Delete the user for good; `user.deleted` tells the replicas to forget them."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        publish(
            UserDeleted(user_id=user.id),
            aggregate_id=str(user.id),
            aggregate_version=user.version + 1,
        )
        revoke_refresh_tokens(user.pk)
        user.delete()
