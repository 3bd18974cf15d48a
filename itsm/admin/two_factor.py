"""/admin/2fa/, where staff set up their second factor: a QR code (an inline SVG drawn here by segno, so no script
and no other site is involved) and the same secret as text for an authenticator app, confirmed by one of its codes;
then ten recovery codes, shown once. Afterwards the page makes new recovery codes or starts over with a new app (a
lost phone: sign in with a recovery code, then "Set up a new app")."""

from __future__ import annotations

from typing import Any

import django_otp
import segno
from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_totp.models import TOTPDevice

from itsm.services.two_factor import (
    recovery_codes_left,
    recovery_codes_regenerate,
    second_factor_reset,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_secret,
)


class ConfirmForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


def qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URL of the device as an inline SVG (black on white, also readable in the admin's dark theme)."""
    return str(
        segno.make(device.config_url, error="m").svg_inline(
            scale=5, dark="#000", light="#fff", title="QR code for your authenticator app", svgclass="qr-code"
        )
    )


@require_http_methods(["GET", "POST"])
def two_factor_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    action = request.POST.get("action", "") if request.method == "POST" else ""
    context: dict[str, Any] = {**admin.site.each_context(request), "title": "Two factors"}
    enrolled = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if enrolled is not None:
        if action == "recovery":
            context["recovery_codes"] = recovery_codes_regenerate(user=user)
        elif action == "replace":
            second_factor_reset(user=user, by="themselves")
            messages.info(request, "Your former app and recovery codes no longer work. Set up the new app below.")
            return HttpResponseRedirect(reverse("admin:two-factor"))
        context.update(enrolled=enrolled, codes_left=recovery_codes_left(user))
        return TemplateResponse(request, "admin/itsm/two_factor.html", context)

    device = totp_enrolment_start(user=user)
    form = ConfirmForm(request.POST if action == "confirm" else None)
    if form.is_valid():
        confirmed = totp_enrolment_confirm(user=user, code=form.cleaned_data["code"])
        if confirmed is not None:
            device, codes = confirmed
            django_otp.login(request, device)  # this session is now signed in with the second factor
            context.update(enrolled=device, recovery_codes=codes, codes_left=len(codes), just_enrolled=True)
            return TemplateResponse(request, "admin/itsm/two_factor.html", context)
        form.add_error("code", "This code is wrong or expired: enter the one the app shows now.")
    context.update(form=form, qr=qr_svg(device), secret=totp_secret(device))
    return TemplateResponse(request, "admin/itsm/two_factor.html", context)


admin.site.register_page("2fa/", two_factor_page, "two-factor")  # type: ignore[attr-defined]  # DeskAdminSite
