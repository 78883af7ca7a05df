"""A third sandbox provider for tests/test_sandbox_registry.py: the smallest module the
sandbox registry accepts (LABEL, BASE_PATH, ENDPOINTS, urlpatterns), to show that a
provider needs nothing else on the sandbox side (no URL line, no view elsewhere, no
migration)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

LABEL = "Third (test)"
BASE_PATH = "third"
ENDPOINTS = ("POST /send",)


@csrf_exempt
def third_api(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": request.method == "POST", "answered_by": LABEL})


urlpatterns = [path("third/send", third_api, name="third-api")]
