"""POST /api/v1/auth/token/, /auth/logout/ and /auth/logoutall/: hashed, expiring tokens (django-rest-knox), logins
throttled with the admin's and the portal's (itsm.services.logins). A user with two factors sends `otp` too."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken
from knox.views import LogoutAllView as KnoxLogoutAllView
from knox.views import LogoutView as KnoxLogoutView
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from itsm.api.authentication import TokenAuthentication
from itsm.api.strict import StrictSerializer
from itsm.services.logins import LoginThrottled, credentials_check
from itsm.services.two_factor import SecondFactorRefused


class LoginSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    otp = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="For a user with two factors: the code of their authenticator app, or one of their recovery codes.",
    )


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expiry = serializers.DateTimeField(allow_null=True)


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
            400: OpenApiResponse(
                description='Missing fields, wrong credentials, or a missing or wrong `otp` code (`{"otp": [...]}`).'
            ),
            429: OpenApiResponse(TooManyFailures, description="Too many failed logins for this account or address."),
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        credentials = LoginSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        try:
            user = credentials_check(
                username=credentials.validated_data["username"],
                password=credentials.validated_data["password"],
                address=BaseThrottle().get_ident(request),
                otp=credentials.validated_data.get("otp", ""),
                enrolment_required=True,
            )
        except SecondFactorRefused as refused:
            return Response({"otp": [str(refused)]}, status=status.HTTP_400_BAD_REQUEST)
        except LoginThrottled as exc:
            return Response(
                {"detail": "Too many failed logins. Try again later."},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(exc.retry_after)},
            )
        if user is None:
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


@extend_schema(
    request=None,
    responses={204: OpenApiResponse(description="Every token of the user who sent this request is revoked.")},
    tags=["auth"],
)
class LogoutAllView(KnoxLogoutAllView):
    """Revoke every token of this user, the one that signed this request included (a lost laptop, a leaked
    script)."""

    authentication_classes = [TokenAuthentication]


__all__ = ["LogoutAllView", "LogoutView", "ObtainTokenView"]
