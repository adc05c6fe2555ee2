"""`/healthz`, `/readyz` and `/metrics` of every API."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from common.observability import metrics, readiness


def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers (liveness): nothing else is checked."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    """The database and what the suite's parts need (the broker) are reachable (readiness)."""
    problems = readiness.problems()
    if problems:
        return JsonResponse({"status": "unavailable", **problems}, status=503)
    return JsonResponse({"status": "ready"})


_registry: CollectorRegistry | None = None


def metrics_view(request: HttpRequest) -> HttpResponse:
    global _registry
    if _registry is None:
        # counters too: with dispatch on commit, this process publishes its service's events
        _registry = metrics.registry(counters=True)
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
