"""The provider-facing webhook. Thin: everything is in webhooks/hotpath.py."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from webhooks import hotpath


def _respond(reply: hotpath.Reply) -> HttpResponse:
    return HttpResponse(
        reply.json(), status=reply.status, content_type="application/json"
    )


@csrf_exempt
def tencent(request: HttpRequest) -> HttpResponse:
    """POST /webhooks/tencent?SdkAppid=..&CallbackCommand=..[&Sign=..&RequestTime=..]"""
    if request.method != "POST":
        response = _respond(hotpath.error("use POST", 405, "bad_method"))
        response["Allow"] = "POST"
        return response
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    # Refuse before reading: Django would otherwise buffer it (and raise over its own cap).
    if length > settings.WEBHOOK_MAX_BODY:
        return _respond(hotpath.error("body over 1 MB", 413, "too_large"))
    try:
        body = request.body
    except RequestDataTooBig:  # chunked upload without Content-Length
        return _respond(hotpath.error("body over 1 MB", 413, "too_large"))
    return _respond(hotpath.answer(request.GET, body))
