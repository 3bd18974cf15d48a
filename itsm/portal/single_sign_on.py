"""Single sign-on pages, under /oidc/: the start of a sign-in (to the provider, with PKCE), the provider's return
(mozilla-django-oidc's callback: the user is created or updated, itsm.services.single_sign_on) and a sign-out that
ends the provider's session too when it offers one. All answer 404 while ITSM_OIDC_ISSUER is unset.

The admin's and the portal's sign-in pages read `sign_in` (itsm.services.single_sign_on.sign_in_context): the
provider's button, and whether the password form is shown (local accounts or a directory)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path
from mozilla_django_oidc import views

from itsm.services.single_sign_on import DiscoveryFailed, oidc_setting


def _configured() -> None:
    if not settings.ITSM_OIDC_ISSUER:
        raise Http404("Single sign-on is not configured.")


class SignInView(views.OIDCAuthenticationRequestView):
    get_settings = staticmethod(oidc_setting)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _configured()
        try:
            self.OIDC_OP_AUTH_ENDPOINT = oidc_setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except DiscoveryFailed:
            return HttpResponse(
                f"{settings.ITSM_OIDC_PROVIDER_NAME} does not answer; try again in a moment.",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        return super().dispatch(request, *args, **kwargs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # the endpoint is discovered in dispatch
        super(views.OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID


class CallbackView(views.OIDCAuthenticationCallbackView):
    get_settings = staticmethod(oidc_setting)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _configured()
        return super().dispatch(request, *args, **kwargs)


class SignOutView(views.OIDCLogoutView):
    """POST only: signs out of the platform, then to the provider's end of session (back to the portal's sign-in
    page), or straight to the sign-in page when the provider has none."""

    http_method_names = ["post"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _configured()
        return super().dispatch(request, *args, **kwargs)


urlpatterns = [
    path("authenticate/", SignInView.as_view(), name="oidc_authentication_init"),
    path("callback/", CallbackView.as_view(), name="oidc_authentication_callback"),
    path("logout/", SignOutView.as_view(), name="oidc_logout"),
]
