"""The API's token keys, checked where they are used: an API without them refuses to start."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def require_token_keys(*, issuer: bool) -> None:
    """Stop, naming the variable, when the keys this API signs (users) or verifies tokens with are
    missing: otherwise it would start and refuse every token."""
    needed = [("JWT_PUBLIC_KEY", "VERIFYING_KEY", "public.pem")]
    if issuer:
        needed.append(("JWT_PRIVATE_KEY", "SIGNING_KEY", "private.pem"))
    for variable, key, file_name in needed:
        if not settings.SIMPLE_JWT.get(key):
            raise ImproperlyConfigured(
                f"{variable} (or {variable}_FILE or the file {settings.JWT_DIR / file_name}) must be set: "
                f"the API {'signs' if key == 'SIGNING_KEY' else 'verifies'} tokens with it"
            )
