"""The language of the pages: the browser's until a person picks one.

Django's LocaleMiddleware follows the browser (Accept-Language, or the language
cookie). A person who picks a language in the navigation keeps it: the choice is
saved on their account (``LanguagePreference``) and copied into the session when
they sign in, and ``SessionLanguageMiddleware`` (after LocaleMiddleware) lets the
session's language win over the browser's.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from liveadmin.models import LanguagePreference

# The session key holding the language a person picked.
SESSION_KEY = "liveadmin_language"


def supported(code: str | None) -> str | None:
    """``code`` when it is one of LANGUAGES (after Django's normalisation), else None."""
    if not code:
        return None
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return None


class SessionLanguageMiddleware:
    """After LocaleMiddleware: the language picked in this session wins."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        picked = supported(request.session.get(SESSION_KEY))
        if picked and picked != request.LANGUAGE_CODE:
            translation.activate(picked)
            request.LANGUAGE_CODE = picked
        # LocaleMiddleware's response half names the active language (this one).
        return self.get_response(request)


@require_POST
def choose_language(request: HttpRequest) -> HttpResponse:
    """Remember the language picked in the navigation (for the account when signed
    in, else for this session) and go back to the page it was picked on."""
    code = supported(request.POST.get("language"))
    if code:
        request.session[SESSION_KEY] = code
        if request.user.is_authenticated:
            LanguagePreference.objects.update_or_create(
                user=request.user, defaults={"language": code}
            )
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = "/"
    return HttpResponseRedirect(back)


def restore_language(sender, request: HttpRequest, user, **kwargs) -> None:
    """At sign-in, the account's saved language becomes the session's."""
    saved = (
        LanguagePreference.objects.filter(user=user)
        .values_list("language", flat=True)
        .first()
    )
    if request is not None and supported(saved):
        request.session[SESSION_KEY] = saved
