"""Counts per account as well as per address: an attacker who spreads guesses at one account over
many addresses (or forged X-Forwarded-For values, which only configured proxies may set) still
meets the limit. Counts live in the default cache, which the settings make one every process of a
service shares."""

from __future__ import annotations

import hashlib
from typing import Any

from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle


class AccountThrottle(SimpleRateThrottle):
    """Attempts naming one account (the `email` of the body), wherever they come from."""

    scope = "login_account"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        email = request.data.get("email") if isinstance(request.data, dict) else None
        if not isinstance(email, str) or not email.strip():
            return None  # the serializer refuses it; nothing to count against an account
        ident = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class WriteThrottle(ScopedRateThrottle):
    """The view's `throttle_scope`, counted on writes only: reading one's own data stays free, while
    each write may send mail or publish events."""

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)
