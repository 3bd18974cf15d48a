"""Signing in and out of the portal and resetting a password by e-mail: Django's auth views with the portal's
templates. The reset link points at ITSM_PUBLIC_URL, like every link the platform mails, never at the Host header
of the request that asked for it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from rest_framework.throttling import BaseThrottle

from itsm import metrics
from itsm.services.logins import LoginFailures


class SignInView(auth_views.LoginView):
    """Failed sign-ins count with the API's (itsm.services.logins): past the limit of an account or an address, the
    form is refused without checking the password until the window has passed."""

    template_name = "portal/sign_in.html"
    redirect_authenticated_user = True  # then to LOGIN_REDIRECT_URL, "my tickets"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.failures = LoginFailures(
            username=str(request.POST.get("username", ""))[:150],
            address=BaseThrottle().get_ident(request),  # type: ignore[arg-type]  # it reads META only
        )
        if self.failures.blocked():
            metrics.LOGIN_FAILURES.labels(reason="throttled").inc()
            # An unbound form: a bound one would check the password while it is refused.
            form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
            refused = _("Too many failed sign-ins. Try again in a few minutes.")
            response = self.render_to_response(self.get_context_data(form=form, refused=refused))
            response.status_code = 429
            response["Retry-After"] = str(self.failures.window)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        self.failures.record()
        metrics.LOGIN_FAILURES.labels(reason="credentials").inc()
        return super().form_invalid(form)


class SignOutView(auth_views.LogoutView):
    """POST only (Django's LogoutView refuses GET), so a link or an image cannot sign anyone out; then to
    LOGOUT_REDIRECT_URL, the sign-in page."""


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "portal/password_reset.html"
    email_template_name = "portal/email/password_reset.txt"
    subject_template_name = "portal/email/password_reset_subject.txt"
    success_url = reverse_lazy("portal:password-reset-sent")

    def form_valid(self, form: Any) -> HttpResponse:
        self.extra_email_context = {"public_url": settings.ITSM_PUBLIC_URL}
        return super().form_valid(form)


class PasswordResetSentView(auth_views.PasswordResetDoneView):
    template_name = "portal/password_reset_sent.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "portal/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password-reset-done")


class PasswordResetDoneView(auth_views.PasswordResetCompleteView):
    template_name = "portal/password_reset_done.html"
