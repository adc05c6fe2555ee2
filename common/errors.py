"""The errors services raise when they refuse a request: plain Python, no HTTP.

A service says what went wrong and of which kind; the API layer (`common.api.exception_handler`)
alone decides how each kind is answered, so services stay callable from the admin, handlers and
commands alike.
"""

from __future__ import annotations


class ApplicationError(Exception):
    """Refused input: `code` tells programs what went wrong, `field` names the input at fault."""

    code: str = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class NotFound(ApplicationError):
    """No such object among the caller's own."""

    code = "not_found"


class Forbidden(ApplicationError):
    """The caller may not do this at all."""


class Conflict(ApplicationError):
    """Not possible in the object's current state (which may change: retrying can help)."""
