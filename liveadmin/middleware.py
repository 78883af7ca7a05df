"""Sign-in is complete only with the second factor, when the user has one or must."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from liveadmin import second_factor

# Reached without a second factor: signing in and out, the code and setup pages,
# static files, and the machine endpoints that use no session.
EXEMPT_PREFIXES = ("/accounts/", "/static/", "/webhooks/", "/sandbox/v4/", "/metrics")
# Session flag: this sign-in's user had no device and needs none (saves two
# queries per request; setting one up or signing in again clears it).
NO_DEVICE = "liveadmin_no_second_factor"


class RequireSecondFactorMiddleware:
    """After django_otp's OTPMiddleware: an unverified user with a device goes to
    the code page; an administrator without one goes to set one up."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not second_factor.is_verified(user)
            and not request.path_info.startswith(EXEMPT_PREFIXES)
            and not request.session.get(NO_DEVICE)
        ):
            if second_factor.has_second_factor(user):
                return _redirect("otp-verify", request)
            if second_factor.is_required(user):
                return _redirect("otp-setup", request)
            request.session[NO_DEVICE] = True
        return self.get_response(request)


def _redirect(name: str, request: HttpRequest) -> HttpResponse:
    url = reverse(name) + "?" + urlencode({"next": request.get_full_path()})
    if request.headers.get("HX-Request"):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)
