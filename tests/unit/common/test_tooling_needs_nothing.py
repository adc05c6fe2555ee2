"""The contract tools need no keys, no database and no broker (a fresh clone runs them); an API
without its token keys refuses to start, naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def bare_env(tmp_path: Path) -> dict[str, str]:
    """A fresh clone's environment: no keys, no database URLs, a broker that is not there."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SUITE_VAR_DIR": str(tmp_path / "var"),
        "AMQP_URL": "amqp://nobody:nothing@127.0.0.1:1//",
    }


@pytest.mark.parametrize("action", ["check", "catalogue"])
def test_the_contract_tools_run_without_keys_database_or_broker(tmp_path: Path, action: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "users", "contracts", action],
        cwd=ROOT,
        env=bare_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "user.created" in result.stdout or "match the code" in result.stdout
    assert not (tmp_path / "var" / "jwt").exists()


@pytest.mark.parametrize(("service", "variable"), [("users", "JWT_PUBLIC_KEY"), ("orders", "JWT_PUBLIC_KEY")])
def test_an_api_without_its_token_keys_refuses_to_start_naming_them(
    tmp_path: Path, service: str, variable: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {service}_svc.wsgi"],
        cwd=ROOT,
        env=bare_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable} (or {variable}_FILE or the file" in result.stderr


def test_the_users_api_needs_its_private_key_too(tmp_path: Path) -> None:
    public = tmp_path / "public.pem"
    public.write_text("-----BEGIN PUBLIC KEY-----\n")
    result = subprocess.run(
        [sys.executable, "-c", "import users_svc.wsgi"],
        cwd=ROOT,
        env={**bare_env(tmp_path), "JWT_PUBLIC_KEY_FILE": str(public)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "JWT_PRIVATE_KEY (or JWT_PRIVATE_KEY_FILE" in result.stderr and "signs tokens" in result.stderr
