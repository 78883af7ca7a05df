"""When a request reached the application. The sandbox's rate limits count a call
then, as a provider counts it on arrival, not after the middleware and the view's
own work (which a busy process can stretch, bunching the calls it counts).

Under the production entry point (webhooks/rsgi.py, through liveadmin/rsgi_adapter.py)
and webhooks/asgi.py the scope is stamped on the event loop, before Django queues the
request for its view thread; under WSGI this middleware, first in MIDDLEWARE, stamps
the request."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

META_KEY = SCOPE_KEY = "liveadmin.received_at"


class ArrivalMiddleware:
    """First in MIDDLEWARE: stamps request.META[META_KEY] with time.time()."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.META.setdefault(META_KEY, time.time())
        return self.get_response(request)


def received_at(request: HttpRequest) -> float:
    """The earliest stamp: the ASGI scope's, else the middleware's, else now."""
    scope = getattr(request, "scope", None)
    if scope and SCOPE_KEY in scope:
        return scope[SCOPE_KEY]
    return request.META.get(META_KEY) or time.time()
