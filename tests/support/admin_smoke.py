"""Every model in a service's admin opens: changelist with its filters and search, and a change page."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client


def admin_client() -> Client:
    user_model = get_user_model()
    fields = {
        user_model.USERNAME_FIELD: "root@example.com" if user_model.USERNAME_FIELD == "email" else "root"
    }
    user_model.objects.create_superuser(password="S3cure-passphrase", **fields)
    client = Client()
    client.force_login(user_model.objects.get(**fields))
    return client


def assert_every_admin_page_opens() -> list[str]:
    client = admin_client()
    opened = []
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        url = f"/admin/{meta.app_label}/{meta.model_name}/"
        response = client.get(url, {"q": "x"} if model_admin.search_fields else {})
        assert response.status_code == 200, (url, response.status_code)
        opened.append(url)
        first = model._default_manager.first() if meta.managed else None
        if first is not None:
            change = client.get(f"{url}{first.pk}/change/")
            assert change.status_code == 200, (url, change.status_code)
    return opened
