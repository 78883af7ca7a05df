"""Pages of the second factor: enter a code, set up an authenticator, recovery codes."""

from __future__ import annotations

import logging

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from liveadmin import second_factor
from liveadmin.middleware import NO_DEVICE

logger = logging.getLogger(__name__)


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=32,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
            }
        ),
        help_text=gettext_lazy(
            "The 6-digit code from your authenticator app, or a recovery code."
        ),
    )


def _next_url(request: HttpRequest) -> str:
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return "/"


@login_required
def otp_verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in, for users with a second factor."""
    if second_factor.is_verified(request.user) or not second_factor.has_second_factor(
        request.user
    ):
        return redirect(_next_url(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if second_factor.verify_code(request, form.cleaned_data["code"]):
            return redirect(_next_url(request))
        form.add_error(
            "code",
            _(
                "That code is not right (or was used already). Enter the current code "
                "from your authenticator app, or one of your recovery codes."
            ),
        )
    return render(
        request,
        "registration/otp_verify.html",
        {"form": form, "next": _next_url(request)},
    )


@login_required
def otp_setup(request: HttpRequest) -> HttpResponse:
    """Turn on (or, for administrators, first set up) the authenticator app."""
    user = request.user
    if second_factor.has_second_factor(user) and not second_factor.is_verified(user):
        return redirect("otp-verify")
    if second_factor.has_second_factor(user):
        return render(
            request,
            "registration/otp_status.html",
            {
                "required": second_factor.is_required(user),
                "remaining": second_factor.remaining_recovery_codes(user),
            },
        )
    device = second_factor.pending_totp(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = second_factor.confirm_totp(request, device, form.cleaned_data["code"])
        if codes is not None:
            request.session.pop(NO_DEVICE, None)
            return render(
                request,
                "registration/otp_recovery_codes.html",
                {"codes": codes, "next": _next_url(request)},
            )
        form.add_error(
            "code",
            _("That code is not right. Check the time on your phone and try again."),
        )
    return render(
        request,
        "registration/otp_setup.html",
        {
            "form": form,
            "secret": second_factor.totp_secret(device),
            "qr_svg": second_factor.totp_qr_svg(device),
            "required": second_factor.is_required(user),
            "next": _next_url(request),
        },
    )


@login_required
@require_POST
def otp_recovery_codes(request: HttpRequest) -> HttpResponse:
    """New recovery codes (the old ones stop working), for a verified session."""
    if not second_factor.is_verified(request.user):
        raise PermissionDenied
    codes = second_factor.new_recovery_codes(request.user)
    return render(
        request, "registration/otp_recovery_codes.html", {"codes": codes, "next": "/"}
    )


@login_required
@require_POST
def otp_turn_off(request: HttpRequest) -> HttpResponse:
    if not second_factor.is_verified(request.user) or second_factor.is_required(
        request.user
    ):
        raise PermissionDenied
    second_factor.turn_off(request.user)
    messages.success(request, _("Two-factor sign-in is off."))
    return redirect("otp-setup")
