"""`/healthz`, `/readyz` and `/metrics` of every API."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.bus.broker import unreachable_reason
from common.observability.metrics import registry_for


def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers (liveness): nothing else is checked."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    """The database and the broker are reachable (readiness)."""
    problems = {}
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        problems["database"] = f"{type(exc).__name__}: {exc}"
    reason = unreachable_reason(settings.AMQP_URL, timeout=2)
    if reason:
        problems["broker"] = reason
    if problems:
        return JsonResponse({"status": "unavailable", **problems}, status=503)
    return JsonResponse({"status": "ready"})


_registry = None


def metrics(request: HttpRequest) -> HttpResponse:
    global _registry
    if _registry is None:
        # counters too: with dispatch on commit, this process publishes its service's events
        _registry = registry_for(settings.SERVICE_NAME, settings.AMQP_URL, counters=True)
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
