"""Every model change ships with its migration."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("service", ["users", "orders", "notifications"])
def test_no_missing_migrations(service: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", service, "makemigrations", "--check", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
