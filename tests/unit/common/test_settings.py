"""Bad settings stop the process with a message that names the variable."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured

from common.settings import env
from common.settings.base import caches, databases


def test_integers_booleans_and_choices_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_CONCURRENCY", "many")
    with pytest.raises(ImproperlyConfigured, match="WORKER_CONCURRENCY must be an integer, got 'many'"):
        env.env_int("WORKER_CONCURRENCY", 2)
    monkeypatch.setenv("WORKER_CONCURRENCY", "0")
    with pytest.raises(ImproperlyConfigured, match="WORKER_CONCURRENCY must be at least 1"):
        env.env_int("WORKER_CONCURRENCY", 2, minimum=1)
    monkeypatch.setenv("DJANGO_DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG must be a boolean"):
        env.env_bool("DJANGO_DEBUG", False)
    monkeypatch.setenv("APP_ENV", "staging")
    with pytest.raises(ImproperlyConfigured, match="APP_ENV must be one of local, test, production"):
        env.env_choice("APP_ENV", "local", ("local", "test", "production"))


def test_a_database_url_of_the_wrong_kind_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_DATABASE_URL", "mysql://root@localhost/orders")
    with pytest.raises(ImproperlyConfigured, match="ORDERS_DATABASE_URL must be a postgresql://"):
        databases("orders")


def test_secrets_come_from_a_variable_or_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory
) -> None:
    monkeypatch.delenv("SOME_SECRET", raising=False)
    monkeypatch.delenv("SOME_SECRET_FILE", raising=False)
    with pytest.raises(ImproperlyConfigured, match=r"SOME_SECRET \(or SOME_SECRET_FILE"):
        env.env_secret("SOME_SECRET")
    secret_file = tmp_path / "s"  # type: ignore[operator]
    secret_file.write_text("from-file")
    monkeypatch.setenv("SOME_SECRET_FILE", str(secret_file))
    assert env.env_secret("SOME_SECRET") == "from-file"
    monkeypatch.setenv("SOME_SECRET", "from-env")
    assert env.env_secret("SOME_SECRET") == "from-env"


def test_production_refuses_to_start_without_a_secret_key() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "orders", "check"],
        env={"APP_ENV": "production", "PATH": "/usr/bin:/bin", "DJANGO_ALLOWED_HOSTS": "x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set" in result.stderr


def test_manage_py_names_the_services_when_the_switch_is_wrong() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "billing", "migrate"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "unknown service 'billing'" in result.stderr
    assert "users, orders, notifications" in result.stderr


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        (
            {},
            "Flower needs authentication outside local development (APP_ENV is 'production')",
        ),
        ({"FLOWER_BASIC_AUTH": "admin:CHANGE-ME"}, "FLOWER_BASIC_AUTH holds a placeholder"),
    ],
)
def test_flower_refuses_to_start_without_real_authentication_outside_local_development(
    auth: dict[str, str], message: str
) -> None:
    env = {"APP_ENV": "production", "PATH": "/usr/bin:/bin", "AMQP_URL": "amqp://x:y@127.0.0.1:1//", **auth}
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "common.monitor", "flower", "--port=0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_with_cache_url_every_process_counts_in_the_same_redis() -> None:
    """Throttle counts must add up across processes: one process's count is the next one's start."""
    key = f"throttle-probe-{uuid.uuid4().hex}"
    script = f"from django.core.cache import cache; cache.add({key!r}, 0, 60); print(cache.incr({key!r}))"
    env = {"PATH": "/usr/bin:/bin", "CACHE_URL": "redis://127.0.0.1:6379/15"}
    counts = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "manage.py", "users", "shell", "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        counts.append(result.stdout.strip().splitlines()[-1])
    assert counts == ["1", "2"]


def test_a_cache_url_of_the_wrong_kind_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_URL", "memcached://secret@127.0.0.1:11211")
    with pytest.raises(
        ImproperlyConfigured, match="CACHE_URL must be a redis:// or rediss:// URL, got memcached:…"
    ):
        caches("users")
