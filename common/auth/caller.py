"""Who is calling, from a verified token, as the UUID every service keys its data by."""

from __future__ import annotations

import uuid

from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request


def caller_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(str(request.user.id))
    except (AttributeError, ValueError):
        raise AuthenticationFailed("The token names no valid user id.") from None
