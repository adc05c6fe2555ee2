"""The OpenAPI schema and Swagger UI of every API, served from this process alone: the UI's assets
come from drf-spectacular-sidecar through the static files (no CDN: a machine without internet got
a blank page, and a CDN script ran on the admin's origin), its start-up script is a file of its own,
and a Content-Security-Policy lets the page load nothing from anywhere else."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

# Swagger UI sets inline styles and uses data: images; scripts only from this origin.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)


def with_csp(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CSP
        return response

    return wrapped


urlpatterns: list[URLPattern] = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", with_csp(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="docs"),
]
