"""One application error type and one exception handler, shared by every service's API.

Services raise `ApplicationError` from their service functions; views stay thin and every error leaves
as JSON with a `detail`, a machine-readable `code`, and the field it concerns when there is one.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApplicationError(Exception):
    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "invalid"

    def __init__(
        self, message: str, *, field: str | None = None, code: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code
        if status is not None:
            self.status_code = status


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body[exc.field] = [exc.message]
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    return drf_exception_handler(exc, context)


class Pagination(PageNumberPagination):
    """Every list is paged (`?page=N`); the page size is ours, not the client's. A page that is not
    one positive integer is a 400 naming `page`; a page past the end is a 404."""

    page_size = 50

    def get_page_number(self, request: Any, paginator: Any) -> int:
        values = request.query_params.getlist(self.page_query_param)
        if not values:
            return 1
        if len(values) > 1 or not values[0].isascii() or not values[0].isdigit() or int(values[0]) < 1:
            raise exceptions.ValidationError({"page": ["A page number is one positive integer."]})
        return int(values[0])


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A URL that matches nothing: JSON like every other API error (the admin keeps its page)."""
    if request.path.startswith("/admin/"):
        return page_not_found(request, exception or Http404())
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
