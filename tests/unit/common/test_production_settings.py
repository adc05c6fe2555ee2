"""Production starts only when configured on purpose: every development fallback, placeholder and
weak secret that would run silently insecure stops the process, naming the variable."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def production_env(**changes: str | None) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "APP_ENV": "production",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "AMQP_URL": "amqp://orders:s3cret-broker@127.0.0.1:5672//",
        "ORDERS_DATABASE_URL": "postgresql://orders:s3cret-db@127.0.0.1:5432/orders",
    }
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "orders", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_a_deliberate_production_configuration_starts() -> None:
    result = manage(production_env(), "check")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"AMQP_URL": None}, "AMQP_URL must be set in the environment"),
        (
            {"AMQP_URL": "amqp://guest:guest@127.0.0.1:5672//"},
            "AMQP_URL uses the default user 'guest'",
        ),
        ({"AMQP_URL": "amqp://orders:CHANGE-ME@rabbitmq:5672/%2F"}, "AMQP_URL holds a placeholder"),
        ({"ORDERS_DATABASE_URL": None}, "ORDERS_DATABASE_URL must be set in the environment"),
        (
            {"ORDERS_DATABASE_URL": "postgresql://orders:CHANGE-ME@db:5432/orders"},
            "ORDERS_DATABASE_URL holds a placeholder",
        ),
        ({"DJANGO_DEBUG": "1"}, "DJANGO_DEBUG must be off when APP_ENV=production"),
        ({"DJANGO_SECRET_KEY": "CHANGE-ME"}, "DJANGO_SECRET_KEY holds a placeholder"),
        (
            {"DJANGO_SECRET_KEY": "compose-dev-secret-change-me-0123456789abcdefghijklmnop"},
            "DJANGO_SECRET_KEY holds a placeholder",
        ),
        ({"DJANGO_SECRET_KEY": "short-but-not-a-placeholder"}, "DJANGO_SECRET_KEY is too weak"),
        ({"DJANGO_SECRET_KEY": "ab" * 40}, "DJANGO_SECRET_KEY is too weak"),
        ({"EMAIL_HOST_PASSWORD": "CHANGE-ME"}, "EMAIL_HOST_PASSWORD holds a placeholder"),
        (
            {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"},
            "EMAIL_BACKEND must not be the console backend when APP_ENV=production",
        ),
    ],
    ids=lambda value: str(value)[:40],
)
def test_a_silent_fallback_stops_production(changes: dict[str, str | None], message: str) -> None:
    result = manage(production_env(**changes), "check")
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]


def test_an_error_names_the_url_but_never_prints_its_password() -> None:
    result = manage(production_env(ORDERS_DATABASE_URL="mysql://orders:hunter2-xyz@db/orders"), "check")
    assert "ORDERS_DATABASE_URL must be a postgresql://" in result.stderr
    assert "hunter2-xyz" not in result.stderr
    result = manage(production_env(AMQP_URL="redis://orders:hunter2-xyz@broker:6379/0"), "check")
    assert "AMQP_URL must start with amqp://" in result.stderr
    assert "hunter2-xyz" not in result.stderr


FORWARDED_HTTPS = (
    "from django.test import Client\n"
    "print(Client(HTTP_X_FORWARDED_PROTO='https').get('/api/orders/').status_code)\n"
)


@pytest.mark.parametrize(("trusted", "status"), [(None, "301"), ("1", "401")])
def test_x_forwarded_proto_is_believed_only_behind_a_configured_proxy(
    trusted: str | None, status: str
) -> None:
    """With no proxy in front, any client could claim HTTPS: the redirect to HTTPS still happens."""
    env = production_env(DJANGO_TRUSTED_PROXIES=trusted)
    result = manage(env, "shell", "-c", FORWARDED_HTTPS)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == status


def test_the_broker_users_file_refuses_placeholder_passwords(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    env |= {f"RABBITMQ_{n}_PASSWORD": secrets.token_hex(8) for n in ("ADMIN", "FLOWER", "USERS", "ORDERS")}
    env["RABBITMQ_NOTIFICATIONS_PASSWORD"] = "CHANGE-ME"
    output = tmp_path / "definitions.json"
    result = subprocess.run(
        [sys.executable, "-m", "common.ops.rabbitmq_definitions", "--output", str(output)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "RABBITMQ_NOTIFICATIONS_PASSWORD holds a placeholder" in result.stderr
    assert not output.exists()


DEBUG_PAGE = """
from django.test import RequestFactory
from django.views.debug import ExceptionReporter
request = RequestFactory().get("/api/orders/", AMQP_URL="amqp://orders:hunter2-amqp@rabbit:5672//")
try:
    raise RuntimeError("boom")
except RuntimeError as exc:
    html = ExceptionReporter(request, type(exc), exc, exc.__traceback__).get_traceback_html()
print("AMQP_URL" in html, "hunter2" in html)
"""


def test_debug_pages_show_no_password_from_a_url() -> None:
    """Local DEBUG pages listed AMQP_URL (a setting, and the environment in META) with its password."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_DEBUG": "1",
        "AMQP_URL": "amqp://orders:hunter2-amqp@127.0.0.1:5672//",
        "ORDERS_DATABASE_URL": "postgresql://orders:hunter2-db@127.0.0.1:5432/orders",
        "CACHE_URL": "redis://:hunter2-cache@127.0.0.1:6379/0",
    }
    result = manage(env, "shell", "-c", DEBUG_PAGE)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1].split() == ["True", "False"]


def test_production_mails_through_smtp_by_default() -> None:
    result = manage(
        production_env(), "shell", "-c", "from django.conf import settings; print(settings.EMAIL_BACKEND)"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "django.core.mail.backends.smtp.EmailBackend"
