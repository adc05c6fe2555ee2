"""Sign-up and tokens through the HTTP interface of the users service."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from users_svc.accounts.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def sign_up(client: APIClient, **overrides: Any) -> Any:
    body = {
        "email": "Ada@Example.com",
        "password": "S3cure-passphrase",
        "first_name": "Ada",
        "last_name": "Lovelace",
    }
    body.update(overrides)
    return client.post("/api/users/", body, format="json")


def test_sign_up_creates_the_user_and_hides_the_password(client: APIClient) -> None:
    response = sign_up(client)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {"id", "email", "first_name", "last_name", "date_joined"}
    user = User.objects.get(id=body["id"])
    assert user.email == "ada@example.com"  # normalised
    assert user.check_password("S3cure-passphrase")
    assert user.password != "S3cure-passphrase"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b.invalid"}, "email"),
        ({"password": "123"}, "password"),
        ({"password": "ada@example.com"}, "password"),
        ({"first_name": "x" * 151}, "first_name"),
        ({"first_name": 42}, "first_name"),
        ({"email": ["a@example.com"]}, "email"),
    ],
)
def test_bad_sign_up_is_a_400_naming_the_field_and_writes_nothing(
    client: APIClient, overrides: dict[str, str], field: str
) -> None:
    response = sign_up(client, **overrides)

    assert response.status_code == 400
    assert field in response.json()
    assert not User.objects.exists()


def test_an_email_is_taken_once_whatever_its_case(client: APIClient) -> None:
    assert sign_up(client).status_code == 201
    response = sign_up(client, email="ADA@example.COM")
    assert response.status_code == 400
    assert response.json()["code"] == "email_taken"
    assert "email" in response.json()


def test_privileged_fields_in_the_body_are_ignored(client: APIClient) -> None:
    response = sign_up(client, is_staff=True, is_superuser=True, id="00000000-0000-0000-0000-000000000001")
    assert response.status_code == 201
    user = User.objects.get(email="ada@example.com")
    assert not user.is_staff and not user.is_superuser
    assert str(user.id) != "00000000-0000-0000-0000-000000000001"


def test_token_is_rs256_and_verifies_with_the_public_key_alone(client: APIClient) -> None:
    user_id = sign_up(client).json()["id"]

    response = client.post(
        "/api/token/", {"email": "ada@example.com", "password": "S3cure-passphrase"}, format="json"
    )

    assert response.status_code == 200
    tokens = response.json()
    assert jwt.get_unverified_header(tokens["access"])["alg"] == "RS256"
    claims = jwt.decode(
        tokens["access"],
        str(settings.SIMPLE_JWT["VERIFYING_KEY"]),
        algorithms=["RS256"],
        audience="suite",
        issuer="users",
    )
    assert claims["user_id"] == user_id
    assert "refresh" in tokens


def test_wrong_password_gets_no_token(client: APIClient) -> None:
    sign_up(client)
    response = client.post("/api/token/", {"email": "ada@example.com", "password": "wrong"}, format="json")
    assert response.status_code == 401
    assert "access" not in response.json()


def test_malformed_json_is_a_clear_400(client: APIClient) -> None:
    response = client.post("/api/users/", data=b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
