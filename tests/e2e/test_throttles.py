"""Throttles that hold against the running API: the shipped limits, three gunicorn processes (each
with its own memory, so a per-process count would let three times the limit through), and clients
that forge X-Forwarded-For or spread their guesses over many addresses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import free_port, wait_http
from tests.support.suite import Suite, running

LOGIN_LIMIT = 10  # THROTTLE_LOGIN's and THROTTLE_LOGIN_ACCOUNT's default, per minute


@pytest.fixture(scope="module")
def users_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """The users API alone with its shipped throttles, once as it runs with no proxy in front, once
    as `users-api-proxied` behind one trusted proxy (DJANGO_TRUSTED_PROXIES=1)."""
    workdir = Path(tmp_path_factory.mktemp("throttles"))
    with running(workdir, start=False, settings={"WEB_WORKERS": "3"}) as suite:
        suite.start_api("users")
        suite.wait_ready("users", ("api",))
        suite.ports["users-proxied"] = free_port()
        proxied = suite.start_entry(
            "users-api-proxied",
            "users-api",
            USERS_PORT=str(suite.ports["users-proxied"]),
            DJANGO_TRUSTED_PROXIES="1",
        )
        wait_http(proxied, suite.url("users-proxied", "/healthz"))
        yield suite


def bad_logins(suite: Suite, api: str, email: str, count: int) -> list[int]:
    """`count` wrong passwords for `email`, each claiming to come from a new address."""
    codes = []
    for n in range(count):
        status, _ = suite.call_with_headers(
            "POST",
            api,
            "/api/token/",
            {"email": email, "password": "wrong"},
            headers={"X-Forwarded-For": f"198.51.100.{n + 1}"},
        )
        codes.append(status)
    return codes


def test_a_forged_forwarded_for_gets_no_fresh_allowance_and_every_process_counts_together(
    users_api: Suite,
) -> None:
    codes = bad_logins(users_api, "users", f"nobody-{uuid.uuid4().hex[:8]}@example.com", LOGIN_LIMIT + 6)
    assert codes[:LOGIN_LIMIT] == [401] * LOGIN_LIMIT
    assert set(codes[LOGIN_LIMIT:]) == {429}, codes


def test_guesses_at_one_account_from_many_addresses_meet_the_account_limit(users_api: Suite) -> None:
    email = f"target-{uuid.uuid4().hex[:8]}@example.com"
    codes = bad_logins(users_api, "users-proxied", email, LOGIN_LIMIT + 4)
    assert codes[:LOGIN_LIMIT] == [401] * LOGIN_LIMIT
    assert set(codes[LOGIN_LIMIT:]) == {429}, codes
    # another account, from those same addresses, is not locked by them
    assert bad_logins(users_api, "users-proxied", f"other-{uuid.uuid4().hex[:8]}@example.com", 1) == [401]


def test_behind_a_trusted_proxy_each_client_address_has_its_own_allowance(users_api: Suite) -> None:
    """The proxy's own hop is believed: two clients behind it do not share one count."""
    for n in range(LOGIN_LIMIT + 2):
        email = f"spread-{n}-{uuid.uuid4().hex[:6]}@example.com"
        status, _ = users_api.call_with_headers(
            "POST",
            "users-proxied",
            "/api/token/",
            {"email": email, "password": "wrong"},
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
        expected = 401 if n < LOGIN_LIMIT else 429
        assert status == expected, (n, status)
    status, _ = users_api.call_with_headers(
        "POST",
        "users-proxied",
        "/api/token/",
        {"email": f"fresh-{uuid.uuid4().hex[:6]}@example.com", "password": "wrong"},
        headers={"X-Forwarded-For": "203.0.113.8"},
    )
    assert status == 401
