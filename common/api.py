"""One exception handler, shared by every service's API.

Services raise `common.errors.ApplicationError` (or one of its kinds) from their service functions;
views stay thin and every error leaves as JSON with a `detail`, a machine-readable `code`, and the
field it concerns when there is one. The HTTP status of each kind is decided here, not in services.
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

from common.errors import ApplicationError, Conflict, Forbidden, NotFound

# The answer to each kind of application error; an error of several kinds gets its nearest one's.
STATUSES: dict[type[ApplicationError], int] = {
    ApplicationError: status.HTTP_400_BAD_REQUEST,
    Forbidden: status.HTTP_403_FORBIDDEN,
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
}


def status_of(exc: ApplicationError) -> int:
    return next(STATUSES[kind] for kind in type(exc).__mro__ if kind in STATUSES)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body[exc.field] = [exc.message]
        return Response(body, status=status_of(exc))
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
