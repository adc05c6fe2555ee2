"""Sign-up publishes user.created on the real broker through the outbox: dispatched on commit (the
shipped default), and whatever that left is relayed."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.support.relaying import relay_pending
from tests.support.tap import EventTap

pytestmark = pytest.mark.django_db(transaction=True)


def test_sign_up_publishes_user_created(tap: EventTap) -> None:
    response = APIClient().post(
        "/api/users/",
        {
            "email": "grace@example.com",
            "password": "S3cure-passphrase",
            "first_name": "Grace",
            "last_name": "Hopper",
        },
        format="json",
        HTTP_X_CORRELATION_ID="5f0c8a4e-8c55-4a0e-9a43-2a4b1b9d7f10",
    )
    assert response.status_code == 201
    relay_pending()

    [received] = tap.wait_for(1)
    envelope = received["envelope"]
    assert envelope["type"] == "user.created" and envelope["version"] == 1
    assert envelope["aggregate_id"] == response.json()["id"]
    assert envelope["aggregate_version"] == 1
    assert envelope["correlation_id"] == "5f0c8a4e-8c55-4a0e-9a43-2a4b1b9d7f10"
    assert envelope["data"] == {
        "user_id": response.json()["id"],
        "email": "grace@example.com",
        "first_name": "Grace",
        "last_name": "Hopper",
    }


def test_a_refused_sign_up_publishes_nothing(tap: EventTap) -> None:
    client = APIClient()
    body = {"email": "dup@example.com", "password": "S3cure-passphrase"}
    assert client.post("/api/users/", body, format="json").status_code == 201
    assert client.post("/api/users/", body, format="json").status_code == 400
    marker = {"email": "marker@example.com", "password": "S3cure-passphrase"}
    assert client.post("/api/users/", marker, format="json").status_code == 201
    relay_pending()

    received = tap.wait_for(2)
    emails = [r["envelope"]["data"]["email"] for r in received]
    assert emails == ["dup@example.com", "marker@example.com"]
