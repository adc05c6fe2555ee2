"""Thin HTTP adapters: parse with an input serializer, call a service, render an output serializer."""

from __future__ import annotations

from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from common.openapi import errors
from common.throttling.throttles import AccountThrottle, WriteThrottle
from users_svc.accounts import services
from users_svc.accounts.models import User
from users_svc.accounts.serializers import (
    ChangePasswordInput,
    SignUpInput,
    UpdateMeInput,
    UserOutput,
)


class SignUpApi(APIView):
    permission_classes = (AllowAny,)
    authentication_classes = ()
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "signup"

    @extend_schema(
        summary="Sign up", request=SignUpInput, responses={201: UserOutput, **errors(400, 429)}, auth=[]
    )
    def post(self, request: Request) -> Response:
        data = SignUpInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.sign_up(**data.validated_data)
        return Response(UserOutput(user).data, status=status.HTTP_201_CREATED)


# Tokens must not stay in a browser's or a proxy's cache: Cache-Control: no-store (and private).
@method_decorator(never_cache, name="dispatch")
@extend_schema(
    summary="Log in: email and password for an access and a refresh token",
    responses={200: TokenObtainPairView.serializer_class, **errors(400, 401, 429)},
)
class TokenApi(TokenObtainPairView):
    throttle_classes = (ScopedRateThrottle, AccountThrottle)
    throttle_scope = "login"


@method_decorator(never_cache, name="dispatch")
@extend_schema(
    summary="A new access token for a refresh token",
    responses={200: TokenRefreshView.serializer_class, **errors(400, 401, 429)},
)
class TokenRefreshApi(TokenRefreshView):
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "login"


def me(request: Request) -> User:
    """The authenticated caller (the view requires authentication)."""
    assert isinstance(request.user, User)
    return request.user


class MeApi(APIView):
    """The caller's own account: the only user a caller can see or change."""

    throttle_classes = (WriteThrottle,)
    throttle_scope = "profile"

    @extend_schema(summary="Your account", responses={200: UserOutput, **errors(401)})
    def get(self, request: Request) -> Response:
        return Response(UserOutput(me(request)).data)

    @extend_schema(
        summary="Change your email or name",
        request=UpdateMeInput,
        responses={200: UserOutput, **errors(400, 401, 429)},
    )
    def patch(self, request: Request) -> Response:
        data = UpdateMeInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.update_profile(user_id=me(request).pk, **data.validated_data)
        return Response(UserOutput(user).data)

    @extend_schema(
        summary="Delete your account",
        responses={204: OpenApiResponse(description="Deleted."), **errors(401)},
    )
    def delete(self, request: Request) -> Response:
        services.delete_account(user_id=me(request).pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChangePasswordApi(APIView):
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "password"

    @extend_schema(
        summary="Change your password (revokes your refresh tokens)",
        request=ChangePasswordInput,
        responses={204: OpenApiResponse(description="Changed."), **errors(400, 401, 429)},
    )
    def post(self, request: Request) -> Response:
        data = ChangePasswordInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.change_password(user=me(request), **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)
