"""Start (or continue) a correlation at the HTTP edge, and log one line per request within it."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from common.observability.context import in_flight

HEADER = "X-Correlation-ID"
log = logging.getLogger("common.http")
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")  # probes and scrapes: every few seconds, no news


class CorrelationIdMiddleware:
    """Take a caller's `X-Correlation-ID` when it is a UUID, else start a new one; echo it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            correlation = uuid.UUID(request.headers.get(HEADER, ""))
        except ValueError:
            correlation = uuid.uuid4()
        started = time.perf_counter()
        with in_flight(correlation=correlation, causation=None):
            response = self.get_response(request)
            if request.path not in QUIET_PATHS:
                log.info(
                    "%s %s %d %.1f ms",
                    request.method,
                    request.path,
                    response.status_code,
                    (time.perf_counter() - started) * 1000,
                )
        response[HEADER] = str(correlation)
        return response
