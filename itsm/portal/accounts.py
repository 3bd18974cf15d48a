"""Signing in and out of the portal and resetting a password by e-mail: Django's auth views with the portal's
templates. The reset link points at ITSM_PUBLIC_URL, like every link the platform mails, never at the Host header
of the request that asked for it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse_lazy

from itsm.services.logins import password_reset_take
from itsm.sign_in import PortalSignInForm, client_address


class SignInView(auth_views.LoginView):
    """The password is checked under the API's and the admin's limits (itsm.services.logins): past the limit of
    this account from this address, or of this address, the form is refused, 429, without checking it."""

    template_name = "portal/sign_in.html"
    redirect_authenticated_user = True  # then to LOGIN_REDIRECT_URL, "my tickets"
    authentication_form = PortalSignInForm

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)  # the form says why: wrong credentials, or too many failures
        throttled = getattr(form, "throttled", None)
        if throttled is not None:
            response.status_code = 429
            response["Retry-After"] = str(throttled.retry_after)
        return response


class SignOutView(auth_views.LogoutView):
    """POST only (Django's LogoutView refuses GET), so a link or an image cannot sign anyone out; then to
    LOGOUT_REDIRECT_URL, the sign-in page."""


class PasswordResetView(auth_views.PasswordResetView):
    """Requests are counted per client address and per e-mail address asked for (itsm.services.logins); past either
    limit no mail goes out, and the answer is the same page as always, so it tells nothing about the accounts."""

    template_name = "portal/password_reset.html"
    email_template_name = "portal/email/password_reset.txt"
    subject_template_name = "portal/email/password_reset_subject.txt"
    success_url = reverse_lazy("portal:password-reset-sent")

    def form_valid(self, form: Any) -> HttpResponse:
        if not password_reset_take(email=form.cleaned_data["email"], address=client_address(self.request)):
            return HttpResponseRedirect(self.get_success_url())
        self.extra_email_context = {"public_url": settings.ITSM_PUBLIC_URL}
        return super().form_valid(form)


class PasswordResetSentView(auth_views.PasswordResetDoneView):
    template_name = "portal/password_reset_sent.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "portal/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password-reset-done")


class PasswordResetDoneView(auth_views.PasswordResetCompleteView):
    template_name = "portal/password_reset_done.html"
