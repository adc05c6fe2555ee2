"""How errors look in the OpenAPI schemas, so every documented endpoint lists its real failures."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR = inline_serializer(
    "Error",
    fields={
        "detail": serializers.CharField(help_text="What went wrong, for people."),
        "code": serializers.CharField(required=False, help_text="What went wrong, for programs."),
    },
)
# Keys are the invalid fields (nested input nests the same way), each listing its problems; an
# application error adds `detail` and `code`.
VALIDATION_ERROR = OpenApiTypes.OBJECT

_DESCRIPTIONS = {
    400: "Invalid input: an object naming each invalid field with a list of its problems "
    "(nested input nests the same way), plus `detail` and `code` for an application error.",
    401: "Missing, expired or invalid access token.",
    403: "Not allowed for this caller.",
    404: "No such object among the caller's own (or no such page of a list).",
    409: "The request conflicts with the object's current state.",
    429: "Too many requests; retry after the time in Retry-After.",
}


def errors(*codes: int) -> dict[int, Any]:
    return {
        code: OpenApiResponse(VALIDATION_ERROR if code == 400 else ERROR, description=_DESCRIPTIONS[code])
        for code in codes
    }
