"""The provider-facing webhook through Django (tests, `runserver`). Thin: the answer is
webhooks/hotpath.py's; production serves the same path from webhooks/wsgi.py."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from webhooks import hotpath
from webhooks.hot_settings import hot
from webhooks.request_body import BodyRefused, read_body


def _respond(reply: hotpath.Reply) -> HttpResponse:
    return HttpResponse(
        reply.json(), status=reply.status, content_type="application/json"
    )


@csrf_exempt
def tencent(request: HttpRequest) -> HttpResponse:
    """POST /webhooks/tencent?SdkAppid=..&CallbackCommand=..[&Sign=..&RequestTime=..]"""
    if request.method != "POST":
        response = _respond(hotpath.wrong_method())
        response["Allow"] = "POST"
        return response
    # Read the raw stream (Django's own stream would see an empty chunked body), and
    # refuse past the cap without buffering the rest.
    try:
        body = read_body(request.META, hot().max_body)
    except BodyRefused as exc:
        return _respond(hotpath.body_refused(exc))
    return _respond(hotpath.answer(request.GET, body))
