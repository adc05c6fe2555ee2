"""Start (or continue) a correlation at the HTTP edge."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from common.observability.context import in_flight

HEADER = "X-Correlation-ID"


class CorrelationIdMiddleware:
    """Take a caller's `X-Correlation-ID` when it is a UUID, else start a new one; echo it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            correlation = uuid.UUID(request.headers.get(HEADER, ""))
        except ValueError:
            correlation = uuid.uuid4()
        with in_flight(correlation=correlation, causation=None):
            response = self.get_response(request)
        response[HEADER] = str(correlation)
        return response
