"""How errors look in the OpenAPI schemas, so every documented endpoint lists its real failures."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR = inline_serializer(
    "Error",
    fields={
        "detail": serializers.CharField(help_text="What went wrong, for people."),
        "code": serializers.CharField(required=False, help_text="What went wrong, for programs."),
    },
)
VALIDATION_ERROR = inline_serializer(
    "ValidationError",
    fields={
        "field_name": serializers.ListField(
            child=serializers.CharField(),
            help_text="One entry per invalid field (named by the field), listing its problems; "
            "nested fields nest the same way.",
        ),
    },
)

_DESCRIPTIONS = {
    400: "Invalid input: the body names each field in error.",
    401: "Missing, expired or invalid access token.",
    403: "Not allowed for this caller.",
    404: "No such object among the caller's own.",
    409: "The request conflicts with the object's current state.",
    429: "Too many requests; retry after the time in Retry-After.",
}


def errors(*codes: int) -> dict[int, Any]:
    return {
        code: OpenApiResponse(VALIDATION_ERROR if code == 400 else ERROR, description=_DESCRIPTIONS[code])
        for code in codes
    }
