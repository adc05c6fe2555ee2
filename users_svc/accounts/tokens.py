"""Revoking tokens. Access tokens carry a hash of the password's hash (simplejwt's
CHECK_REVOKE_TOKEN), so a new password, set anywhere (the API, the admin, a shell), ends every
access token at once on this service; refresh tokens are blacklisted with it. A refresh token used
twice means one was stolen: every refresh token of that user is revoked."""

from __future__ import annotations

from typing import Any

from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken


def revoke_refresh_tokens(user_id: Any) -> int:
    outstanding = OutstandingToken.objects.filter(user_id=user_id).exclude(blacklistedtoken__isnull=False)
    created = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )
    return len(created)


class ReuseRevokingRefreshSerializer(TokenRefreshSerializer):
    """A rotated (blacklisted) refresh token presented again revokes the whole family: the thief's
    and the owner's newer tokens alike (the owner logs in again)."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            return super().validate(attrs)
        except TokenError as exc:
            try:
                payload = RefreshToken(attrs["refresh"], verify=False).payload
            except TokenError:
                raise InvalidToken(exc.args[0]) from None
            jti, user_id = payload.get(api_settings.JTI_CLAIM), payload.get(api_settings.USER_ID_CLAIM)
            if jti and user_id and BlacklistedToken.objects.filter(token__jti=jti).exists():
                revoke_refresh_tokens(user_id)
            raise InvalidToken(exc.args[0]) from None
