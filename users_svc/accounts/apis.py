"""Thin HTTP adapters: parse with an input serializer, call a service, render an output serializer."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView

from users_svc.accounts import services
from users_svc.accounts.serializers import SignUpInput, UserOutput


class SignUpApi(APIView):
    permission_classes = (AllowAny,)
    authentication_classes = ()
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "signup"

    @extend_schema(request=SignUpInput, responses={201: UserOutput}, auth=[])
    def post(self, request: Request) -> Response:
        data = SignUpInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.sign_up(**data.validated_data)
        return Response(UserOutput(user).data, status=status.HTTP_201_CREATED)


class TokenApi(TokenObtainPairView):
    """Email and password in, an RS256 access and refresh token out."""

    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "login"
