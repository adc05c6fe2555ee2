"""The admin's login, throttled like the API's: the admin site is each service's default site
(`ThrottledAdminConfig`), so every admin URL and registration stays as it is."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


def over_limit(scope: str, ident: str, rate: str) -> bool:
    """One more attempt in this window of `rate` ("10/min"); whether it is one too many."""
    allowed, seconds = SimpleRateThrottle.parse_rate(None, rate)  # type: ignore[arg-type]
    assert allowed is not None and seconds is not None
    window = int(time.time() // seconds)
    key = f"throttle_{scope}_{hashlib.sha256(ident.encode()).hexdigest()}_{window}"
    cache.add(key, 0, timeout=seconds)
    return int(cache.incr(key)) > allowed


class ThrottledAdminSite(admin.AdminSite):
    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "POST":
            rate = settings.ADMIN_LOGIN_THROTTLE
            address = BaseThrottle().get_ident(request)  # type: ignore[arg-type]  # trusted proxies only
            username = str(request.POST.get("username", "")).strip().lower()
            by_address = over_limit("admin_address", address, rate)
            by_account = over_limit("admin_account", username, rate)  # counted even when over by address
            if by_address or by_account:
                return HttpResponse(
                    "Too many login attempts: wait a minute.", status=429, content_type="text/plain"
                )
        return super().login(request, extra_context)


class ThrottledAdminConfig(AdminConfig):
    default_site = "common.throttling.admin_site.ThrottledAdminSite"
