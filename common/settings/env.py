"""Typed readers for environment settings.

A bad value stops the process at start-up with a message naming the variable, instead of failing later
somewhere far from the cause.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# The broker when AMQP_URL is not set, outside production: a local RabbitMQ's default user.
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"{name} must be set in the environment")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_secret(name: str, *, file_default: Path | None = None, required: bool = True) -> str | None:
    """Read a secret from `NAME`, or from the file named by `NAME_FILE` (Docker/Kubernetes secrets)."""
    value = os.environ.get(name)
    if value:
        return value
    file_name = os.environ.get(f"{name}_FILE")
    path = Path(file_name) if file_name else file_default
    if path is not None and path.is_file():
        return path.read_text()
    if not required:
        return None
    where = f" or the file {path}" if path is not None else ""
    raise ImproperlyConfigured(f"{name} (or {name}_FILE{where}) must be set")


def production() -> bool:
    return os.environ.get("APP_ENV", "local").strip() == "production"


def amqp_url() -> str:
    """AMQP_URL, for the settings, Flower and the command-line tools (which read it without Django).
    Production has no default: the local broker's guest user would be a silent fallback."""
    from common.settings.guards import url_credentials

    if not production():
        return env_str("AMQP_URL", DEFAULT_AMQP_URL)
    return url_credentials("AMQP_URL", env_str("AMQP_URL"), refused_users=("guest",))
