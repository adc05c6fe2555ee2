"""The users admin: every registered model opens, and replicas and logs are read-only."""

from __future__ import annotations

import pytest

from tests.support.admin_smoke import assert_every_admin_page_opens

pytestmark = pytest.mark.django_db


def test_every_model_page_opens() -> None:
    opened = assert_every_admin_page_opens()
    assert "/admin/bus/outboxmessage/" in opened and "/admin/bus/deadletter/" in opened
