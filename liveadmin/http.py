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
