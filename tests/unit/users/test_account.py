"""The caller's own account: read, change, delete, change password, and the events each publishes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.support.outbox import published
from users_svc.accounts.models import User

pytestmark = pytest.mark.django_db
PASSWORD = "S3cure-passphrase"


def signed_up(email: str = "ada@example.com") -> tuple[APIClient, dict[str, Any]]:
    client = APIClient()
    user = client.post(
        "/api/users/",
        {"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"},
        format="json",
    ).json()
    tokens = client.post("/api/token/", {"email": email, "password": PASSWORD}, format="json").json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    client.refresh_token = tokens["refresh"]  # type: ignore[attr-defined]
    return client, user


def test_me_shows_the_callers_account() -> None:
    client, user = signed_up()
    body = client.get("/api/users/me/").json()
    assert body == {**user}


def test_patch_changes_the_profile_and_publishes_the_whole_profile_with_what_changed() -> None:
    client, user = signed_up()

    response = client.patch(
        "/api/users/me/", {"email": "Ada.New@Example.com", "first_name": "Augusta"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["email"] == "ada.new@example.com"
    [updated] = published("user.updated")
    assert updated["aggregate_version"] == 2 and updated["aggregate_id"] == user["id"]
    assert updated["data"] == {
        "user_id": user["id"],
        "email": "ada.new@example.com",
        "first_name": "Augusta",
        "last_name": "Lovelace",
        "changed": ["email", "first_name"],
    }


def test_patch_without_a_change_publishes_nothing() -> None:
    client, _ = signed_up()
    assert client.patch("/api/users/me/", {"first_name": "Ada"}, format="json").status_code == 200
    assert published("user.updated") == []


def test_patch_to_a_taken_email_is_a_400_naming_email_and_changes_nothing() -> None:
    signed_up("grace@example.com")
    client, _ = signed_up()
    response = client.patch("/api/users/me/", {"email": "GRACE@example.com"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "email_taken"
    assert "email" in response.json()
    assert User.objects.get(email="ada@example.com").version == 1
    assert published("user.updated") == []


def test_privileged_fields_in_a_patch_have_no_effect() -> None:
    client, user = signed_up()
    response = client.patch(
        "/api/users/me/",
        {
            "is_staff": True,
            "is_superuser": True,
            "is_active": False,
            "version": 99,
            "password": "x",
            "id": "00000000-0000-0000-0000-000000000001",
            "date_joined": "2000-01-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 200
    stored = User.objects.get(id=user["id"])
    assert (stored.is_staff, stored.is_superuser, stored.is_active, stored.version) == (False, False, True, 1)
    assert stored.check_password(PASSWORD)
    assert published("user.updated") == []


def test_delete_removes_the_account_publishes_user_deleted_and_refuses_the_token() -> None:
    client, user = signed_up()

    assert client.delete("/api/users/me/").status_code == 204

    assert not User.objects.filter(id=user["id"]).exists()
    [deleted] = published("user.deleted")
    assert deleted["data"] == {"user_id": user["id"]} and deleted["aggregate_version"] == 2
    assert client.get("/api/users/me/").status_code == 401
    refreshed = APIClient().post("/api/token/refresh/", {"refresh": client.refresh_token}, format="json")  # type: ignore[attr-defined]
    assert refreshed.status_code == 401


def test_change_password_checks_the_current_one_and_revokes_refresh_tokens() -> None:
    client, _ = signed_up()
    wrong = client.post(
        "/api/users/me/password/",
        {"current_password": "nope", "new_password": "N3w-passphrase!"},
        format="json",
    )
    assert wrong.status_code == 400 and "current_password" in wrong.json()
    weak = client.post(
        "/api/users/me/password/", {"current_password": PASSWORD, "new_password": "123"}, format="json"
    )
    assert weak.status_code == 400 and "new_password" in weak.json()

    ok = client.post(
        "/api/users/me/password/",
        {"current_password": PASSWORD, "new_password": "N3w-passphrase!"},
        format="json",
    )

    assert ok.status_code == 204
    assert (
        APIClient()
        .post("/api/token/", {"email": "ada@example.com", "password": "N3w-passphrase!"}, format="json")
        .status_code
        == 200
    )
    assert (
        APIClient()
        .post("/api/token/", {"email": "ada@example.com", "password": PASSWORD}, format="json")
        .status_code
        == 401
    )
    assert (
        APIClient()
        .post(
            "/api/token/refresh/",
            {"refresh": client.refresh_token},  # type: ignore[attr-defined]
            format="json",
        )
        .status_code
        == 401
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/users/me/"),
        ("patch", "/api/users/me/"),
        ("delete", "/api/users/me/"),
        ("post", "/api/users/me/password/"),
    ],
)
def test_account_routes_need_a_token(method: str, path: str) -> None:
    assert getattr(APIClient(), method)(path).status_code == 401


def test_two_users_never_touch_each_others_account() -> None:
    alice, alice_data = signed_up("alice@example.com")
    bob, _ = signed_up("bob@example.com")

    assert bob.get("/api/users/me/").json()["email"] == "bob@example.com"
    bob.patch("/api/users/me/", {"first_name": "Mallory"}, format="json")
    bob.post(
        "/api/users/me/password/",
        {"current_password": PASSWORD, "new_password": "N3w-passphrase!"},
        format="json",
    )
    bob.delete("/api/users/me/")

    alice_now = User.objects.get(id=alice_data["id"])
    assert alice_now.first_name == "Ada" and alice_now.check_password(PASSWORD)
    assert alice.get("/api/users/me/").status_code == 200


def test_login_is_throttled() -> None:
    signed_up()
    client = APIClient()
    codes = [
        client.post(
            "/api/token/", {"email": "ada@example.com", "password": "wrong"}, format="json"
        ).status_code
        for _ in range(12)
    ]
    assert 429 in codes


def test_admin_profile_changes_and_deletions_publish_events() -> None:
    _, user = signed_up()
    User.objects.create_superuser("root@example.com", PASSWORD)
    admin = Client()
    assert admin.login(email="root@example.com", password=PASSWORD)
    page = admin.get(f"/admin/accounts/user/{user['id']}/change/")
    assert page.status_code == 200

    admin.post(
        f"/admin/accounts/user/{user['id']}/change/",
        {
            "email": "changed@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    [updated] = published("user.updated")
    assert updated["data"]["email"] == "changed@example.com" and updated["data"]["changed"] == ["email"]

    admin.post(f"/admin/accounts/user/{user['id']}/delete/", {"post": "yes"})
    assert [e["data"]["user_id"] for e in published("user.deleted")] == [user["id"]]


def test_token_responses_are_never_cached() -> None:
    client, _ = signed_up()
    response = APIClient().post(
        "/api/token/", {"email": "ada@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    refreshed = APIClient().post("/api/token/refresh/", {"refresh": client.refresh_token}, format="json")  # type: ignore[attr-defined]
    assert refreshed.status_code == 200
    assert "no-store" in refreshed["Cache-Control"]


def test_profile_changes_are_throttled_per_account() -> None:
    """Each change publishes an event: THROTTLE_PROFILE (30/min) per account; reading stays free."""
    client, _ = signed_up()
    codes = [
        client.patch("/api/users/me/", {"first_name": f"Ada{n}"}, format="json").status_code
        for n in range(32)
    ]
    assert codes[:30] == [200] * 30 and codes[30:] == [429, 429]
    assert client.get("/api/users/me/").status_code == 200


def test_a_new_password_ends_every_access_token_at_once() -> None:
    """Access tokens stayed valid for their 15 minutes after a password change."""
    client, _ = signed_up()
    assert client.get("/api/users/me/").status_code == 200
    changed = client.post(
        "/api/users/me/password/",
        {"current_password": PASSWORD, "new_password": "N3w-passphrase!"},
        format="json",
    )
    assert changed.status_code == 204
    assert client.get("/api/users/me/").status_code == 401  # the same, still unexpired, access token


def test_a_password_set_in_the_admin_revokes_access_and_refresh_tokens() -> None:
    client, user = signed_up()
    User.objects.create_superuser("root@example.com", "S3cure-root-passphrase")
    admin = Client()
    assert admin.login(email="root@example.com", password="S3cure-root-passphrase")
    response = admin.post(
        f"/admin/accounts/user/{user['id']}/password/",
        {"password1": "Adm1n-set-passphrase", "password2": "Adm1n-set-passphrase", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:500]
    assert client.get("/api/users/me/").status_code == 401
    refresh = APIClient().post("/api/token/refresh/", {"refresh": client.refresh_token}, format="json")  # type: ignore[attr-defined]
    assert refresh.status_code == 401


def test_a_refresh_token_used_twice_revokes_its_whole_family() -> None:
    """Replaying a rotated refresh token (stolen) was refused, but the thief's or owner's newer
    token went on working."""
    client, _ = signed_up()
    first = client.refresh_token  # type: ignore[attr-defined]
    rotated = APIClient().post("/api/token/refresh/", {"refresh": first}, format="json")
    assert rotated.status_code == 200
    second = rotated.json()["refresh"]
    replayed = APIClient().post("/api/token/refresh/", {"refresh": first}, format="json")
    assert replayed.status_code == 401
    assert APIClient().post("/api/token/refresh/", {"refresh": second}, format="json").status_code == 401
