"""The request types of LiveAdmin's views, declared once (django-htmx's example,
healthchecks' ``hc/accounts/http.py``)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxRequest(HttpRequest):
    """Any request, after django-htmx's middleware."""

    htmx: HtmxDetails


class AuthedHtmxRequest(HtmxRequest):
    """A request of a signed-in user (views behind ``login_required``)."""

    user: User


def wants_fragment(request: HtmxRequest) -> bool:
    """An htmx request for a page's fragment (the same URL serves the page)."""
    # htmx restoring a page from history (a cache miss after Back) needs the whole page.
    return bool(request.htmx) and not request.htmx.history_restore_request
