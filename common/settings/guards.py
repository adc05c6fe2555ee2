"""What production refuses to start with: a development fallback, a placeholder copied from an
example file, or a weak secret. Each would otherwise run silently insecure; each refusal names the
variable so the operator knows what to set."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

# Placeholders of our own examples (deploy/k8s/secrets.example.yaml, docs) and of Django's template.
_PLACEHOLDER = re.compile(r"change[-_ ]?me|django-insecure|insecure-local", re.IGNORECASE)
# Django's own bar for SECRET_KEY (check security.W009).
SECRET_KEY_MIN_LENGTH, SECRET_KEY_MIN_UNIQUE = 50, 5


def refuse_placeholder(name: str, value: str) -> None:
    found = _PLACEHOLDER.search(value)
    if found:
        raise ImproperlyConfigured(f"{name} holds a placeholder ({found[0]!r}): set a real value")


def strong_secret_key(name: str, value: str) -> str:
    refuse_placeholder(name, value)
    if len(value) < SECRET_KEY_MIN_LENGTH or len(set(value)) < SECRET_KEY_MIN_UNIQUE:
        raise ImproperlyConfigured(
            f"{name} is too weak: use at least {SECRET_KEY_MIN_LENGTH} random characters "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    return value


def url_credentials(name: str, url: str, *, refused_users: tuple[str, ...] = ()) -> str:
    """No placeholder and no default user in a service's URL. A URL without a password stays
    allowed: certificate or peer authentication needs none."""
    user = urlsplit(url).username
    if user in refused_users:
        raise ImproperlyConfigured(f"{name} uses the default user {user!r}: give each service its own")
    refuse_placeholder(name, url)
    return url


def scheme(url: str) -> str:
    """What an error may say of a URL: its scheme, never its password."""
    return url.split(":", 1)[0] + ":…"
