"""The site's URLs plus /webhooks/bench-bare: parse the body, answer JSON.

Under webhooks/ so it passes through exactly the middleware the webhook does
(including the SECURE_REDIRECT_EXEMPT rule)."""

import json

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from liveadmin.urls import urlpatterns as site_urlpatterns


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    body = json.loads(request.body)
    return HttpResponse(
        json.dumps(
            {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0, "n": len(body)}
        ),
        content_type="application/json",
    )


urlpatterns = [path("webhooks/bench-bare", bare), *site_urlpatterns]
