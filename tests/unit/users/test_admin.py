"""The users admin: every registered model opens, and replicas and logs are read-only."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.support.admin_smoke import assert_every_admin_page_opens

pytestmark = pytest.mark.django_db


def test_every_model_page_opens() -> None:
    opened = assert_every_admin_page_opens()
    assert "/admin/bus/outboxmessage/" in opened and "/admin/bus/deadletter/" in opened


def test_admin_logins_are_throttled_per_address_and_per_username() -> None:
    """THROTTLE_ADMIN_LOGIN (10/min); a forged X-Forwarded-For buys nothing (no proxy is trusted)."""
    client = Client()
    codes = [
        client.post(
            "/admin/login/",
            {"username": "root@example.com", "password": f"guess-{n}"},
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(12)
    ]
    assert codes[:10] == [200] * 10 and codes[10:] == [429, 429]  # 200: the form again, with its error
