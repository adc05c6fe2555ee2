"""`/healthz`, `/readyz` and `/metrics` of every API. On the API's public port, so: readiness is
checked at most once per READINESS_CACHE_SECONDS however often it is asked (each check queries the
database and connects to the broker) and names what fails without the error text; metrics need the
METRICS_TOKEN bearer token when one is set, which production requires (`require_metrics_token`)."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from common.observability import metrics, readiness

READINESS_CACHE_SECONDS = 2.0
_readiness_lock = threading.Lock()
_readiness: tuple[float, list[str]] = (float("-inf"), [])


def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers (liveness): nothing else is checked."""
    return JsonResponse({"status": "ok"})


def failing_checks() -> list[str]:
    """The names of what is not ready, checked at most once per READINESS_CACHE_SECONDS."""
    global _readiness
    with _readiness_lock:
        checked_at, failing = _readiness
        if time.monotonic() - checked_at >= READINESS_CACHE_SECONDS:
            failing = sorted(readiness.problems())
            _readiness = (time.monotonic(), failing)
        return failing


def readyz(request: HttpRequest) -> HttpResponse:
    """The database and what the suite's parts need (the broker) are reachable (readiness)."""
    failing = failing_checks()
    if failing:
        return JsonResponse({"status": "unavailable", "failing": failing}, status=503)
    return JsonResponse({"status": "ready"})


_registry: CollectorRegistry | None = None


def metrics_view(request: HttpRequest) -> HttpResponse:
    global _registry
    token = settings.METRICS_TOKEN
    if token and not constant_time_compare(request.headers.get("Authorization", ""), f"Bearer {token}"):
        response = HttpResponse("metrics need the METRICS_TOKEN bearer token\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if _registry is None:
        # counters too: with dispatch on commit, this process publishes its service's events
        _registry = metrics.registry(counters=True)
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)


def require_metrics_token() -> None:
    """A production API serves its metrics to Prometheus alone: it refuses to start without a token."""
    if settings.PRODUCTION and not settings.METRICS_TOKEN:
        raise ImproperlyConfigured(
            "METRICS_TOKEN (or METRICS_TOKEN_FILE) must be set when APP_ENV=production: /metrics is on "
            "the API's public port, and Prometheus sends it as a bearer token"
        )
