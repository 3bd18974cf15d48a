"""POST /api/v1/auth/token/ and /auth/logout/: hashed, expiring tokens (django-rest-knox), throttled logins."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.cache import cache
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken
from knox.views import LogoutView as KnoxLogoutView
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from itsm import metrics
from itsm.api.authentication import TokenAuthentication
from itsm.api.strict import StrictSerializer


class LoginSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expiry = serializers.DateTimeField(allow_null=True)


class LoginFailures:
    """Failed logins counted per account and per client address, in fixed windows kept in the cache.

    The address is REMOTE_ADDR, or the entry ITSM_NUM_PROXIES from the right of X-Forwarded-For, so a client
    cannot choose a fresh bucket by sending its own header.
    """

    def __init__(self, request: Request, username: str) -> None:
        self.window = settings.ITSM_LOGIN_FAILURE_WINDOW_SECONDS
        address = BaseThrottle().get_ident(request)
        self.limits = {
            f"login-failures:account:{username.lower()}": settings.ITSM_LOGIN_FAILURES_PER_ACCOUNT,
            f"login-failures:address:{address}": settings.ITSM_LOGIN_FAILURES_PER_ADDRESS,
        }

    def blocked(self) -> bool:
        counts = cache.get_many(list(self.limits))
        return any(int(counts.get(key) or 0) >= limit for key, limit in self.limits.items())

    def record(self) -> None:
        for key in self.limits:
            cache.add(key, 0, timeout=self.window)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=self.window)


class TooManyFailures(serializers.Serializer):
    detail = serializers.CharField()


class ObtainTokenView(APIView):
    """Exchange a username and password for an API token."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(description="Missing fields or wrong credentials."),
            429: OpenApiResponse(TooManyFailures, description="Too many failed logins for this account or address."),
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        credentials = LoginSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        username = credentials.validated_data["username"]
        failures = LoginFailures(request, username)
        if failures.blocked():
            metrics.LOGIN_FAILURES.labels(reason="throttled").inc()
            return Response(
                {"detail": "Too many failed logins. Try again later."},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(failures.window)},
            )
        user = authenticate(request._request, username=username, password=credentials.validated_data["password"])
        if user is None or not user.is_active:
            failures.record()
            metrics.LOGIN_FAILURES.labels(reason="credentials").inc()
            return Response(
                {"non_field_errors": ["Unable to log in with these credentials."]}, status=status.HTTP_400_BAD_REQUEST
            )
        instance, token = AuthToken.objects.create(user=user)
        return Response({"token": token, "expiry": instance.expiry})


@extend_schema(
    request=None,
    responses={204: OpenApiResponse(description="The token used for this request is revoked.")},
    tags=["auth"],
)
class LogoutView(KnoxLogoutView):
    """Revoke the token that signed this request."""

    authentication_classes = [TokenAuthentication]


__all__ = ["LogoutView", "ObtainTokenView"]
