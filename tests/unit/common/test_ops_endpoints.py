"""The API's /readyz and /metrics are on its public port: cheap to ask, and metrics only for whoever
holds the token."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

from common.observability import readiness, views

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.django_db


def test_a_flood_of_readiness_probes_checks_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each check queries the database and connects to the broker: 50 probes in a row ran 50 of each."""
    checks: list[int] = []
    monkeypatch.setattr(readiness, "_checks", {"counted": lambda: checks.append(1)})
    monkeypatch.setattr(views, "_readiness", (float("-inf"), []))
    client = Client()
    answers = {client.get("/readyz").status_code for _ in range(50)}
    assert answers == {200}
    assert len(checks) == 1


def test_readiness_names_what_fails_without_its_error_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        readiness, "_checks", {"broker": lambda: "OSError: [Errno 111] rabbit-3.internal:5672"}
    )
    monkeypatch.setattr(views, "_readiness", (float("-inf"), []))
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failing": ["broker"]}


@override_settings(METRICS_TOKEN="metrics-" + "k" * 20)
def test_metrics_need_the_token_when_one_is_set() -> None:
    client = Client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    answer = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer metrics-{'k' * 20}")
    assert answer.status_code == 200 and b"suite_" in answer.content


@pytest.mark.parametrize("service", ["users", "orders", "notifications"])
def test_a_production_api_refuses_to_start_without_a_metrics_token(service: str) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "APP_ENV": "production",
        "DJANGO_ALLOWED_HOSTS": "x",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "AMQP_URL": f"amqp://{service}:pw-{secrets.token_hex(4)}@127.0.0.1:5672//",
        f"{service.upper()}_DATABASE_URL": f"postgresql://{service}@127.0.0.1:5432/{service}",
        "JWT_PUBLIC_KEY": "present",
        "JWT_PRIVATE_KEY": "present",
    }
    result = subprocess.run(
        [sys.executable, "-c", f"import {service}_svc.wsgi"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode != 0
    assert "METRICS_TOKEN (or METRICS_TOKEN_FILE) must be set when APP_ENV=production" in result.stderr
