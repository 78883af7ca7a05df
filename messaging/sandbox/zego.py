"""The sandbox's ZEGO server API v2: public parameters, signature, SendCustomCommand.

Sources: docs/providers.md (ZEGO sections), from ZEGO's SendCustomCommand page and
its public parameters and return codes pages.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from liveadmin import arrival
from messaging.sandbox import limits
from messaging.sandbox.models import MessageKind, SandboxApp, SandboxRoom
from messaging.sandbox.services import store_message

logger = logging.getLogger(__name__)

SKEW_SECONDS = 600
MAX_RECIPIENTS = 10
MAX_CONTENT_BYTES = 1024


class ZegoError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def new_request_id() -> str:
    # ZEGO's RequestIds are decimal strings, e.g. "3005402395393320157".
    return str(secrets.randbelow(9 * 10**18) + 10**18)


def signature(app_id: int | str, nonce: str, secret: str, timestamp: int | str) -> str:
    return hashlib.md5(f"{app_id}{nonce}{secret}{timestamp}".encode()).hexdigest()


def authenticate(query: Any, *, now: float | None = None) -> SandboxApp:
    """Check the public request parameters (docs/providers.md, "ZEGO server API"), in
    gateway order."""
    action = query.get("Action", "")
    if not action:
        raise ZegoError(100000006, "Action is empty")
    if action != "SendCustomCommand":
        raise ZegoError(100000007, f"Action {action} is not supported")
    raw_appid = query.get("AppId", "")
    if not raw_appid.isdigit() or int(raw_appid) > 4294967295:
        raise ZegoError(100000001, "AppId is missing or invalid")
    nonce = query.get("SignatureNonce", "")
    if not nonce:
        raise ZegoError(100000008, "SignatureNonce is empty")
    raw_ts = query.get("Timestamp", "")
    if not raw_ts:
        raise ZegoError(100000002, "Timestamp is empty")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise ZegoError(100000003, "Timestamp is invalid") from None
    given = query.get("Signature", "")
    if not given:
        raise ZegoError(100000009, "Signature is empty")
    version = query.get("SignatureVersion", "")
    if not version:
        raise ZegoError(100000013, "SignatureVersion is empty")
    if version != "2.0":
        raise ZegoError(100000014, "SignatureVersion must be 2.0")
    app = SandboxApp.objects.filter(provider="zego", app_id=int(raw_appid)).first()
    if app is None:
        raise ZegoError(100000010, "cannot get the ServerSecret: check AppId")
    if abs((time.time() if now is None else now) - timestamp) > SKEW_SECONDS:
        raise ZegoError(
            100000004, "signature expired: Timestamp is more than 10 minutes off"
        )
    expected = signature(raw_appid, nonce, app.secret, raw_ts)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise ZegoError(100000005, "signature is wrong")
    return app


def is_test_environment(query: Any) -> bool:
    """IsTest: "true"/"false", case-insensitive; absent means production. (Which
    code another value gets is not documented; the sandbox reads it as production.)"""
    return str(query.get("IsTest", "")).strip().lower() == "true"


# Test trigger (see tencent.FORCED_FAILURE_PREFIX): a room ID answering these codes,
# which no input provokes: the gateway's internal error, and the top-level 50003,
# "failed to get online user count".
FORCEABLE_FAILURES = {
    100000015: "gateway internal error (sandbox test trigger)",
    50003: "failed to get online user count (sandbox test trigger)",
}


def send_custom_command(
    app: SandboxApp, query: Any, request_id: str, received_at: float
) -> dict[str, Any]:
    """SendCustomCommand: RoomId, FromUserId, ToUserId[] (<= 10), MessageContent.

    The test environment (IsTest=true) has its own limit, 10 requests/s; a call is
    counted when it arrived (``received_at``, time.time())."""
    if is_test_environment(query):
        if not limits.acquire(app.state_key, "zego_test", received_at):
            raise ZegoError(
                206,
                "app QPS limited: at most 10 requests per second (test environment)",
            )
    elif not limits.acquire(app.state_key, "zego", received_at):
        raise ZegoError(206, "app QPS limited: at most 100 requests per second")
    room_id = query.get("RoomId", "")
    if not room_id:
        raise ZegoError(2, "RoomId is required")
    from_user = query.get("FromUserId", "")
    if not from_user:
        raise ZegoError(2, "FromUserId is required")
    to_users = query.getlist("ToUserId[]")
    if len(to_users) > MAX_RECIPIENTS:
        raise ZegoError(50011, "at most 10 ToUserId[] per custom message")
    if any(not user for user in to_users):
        raise ZegoError(2, "ToUserId[] cannot hold an empty user ID")
    content = query.get("MessageContent", "")
    if not content:
        raise ZegoError(1008, "MessageContent is empty")
    if len(content.encode()) > MAX_CONTENT_BYTES:
        raise ZegoError(50012, "MessageContent is longer than 1024 bytes")
    forced = room_id.removeprefix("sandbox-fail-")
    if room_id.startswith("sandbox-fail-") and forced.isdigit():
        code = int(forced)
        if code in FORCEABLE_FAILURES:
            raise ZegoError(code, FORCEABLE_FAILURES[code])
    room = SandboxRoom.objects.filter(app=app, room_id=room_id).first()
    if room is None:
        raise ZegoError(50001, f"room {room_id} does not exist")
    store_message(
        room,
        kind=MessageKind.COMMAND,
        sender=from_user,
        msg_body=[
            {
                "MsgType": "ZegoCustomCommand",
                "MsgContent": {"MessageContent": content, "ToUserId": to_users},
            }
        ],
        request_id=request_id,
    )
    # The sandbox has no presence: every recipient counts as online.
    return {"FailUsers": []}


# --- endpoint (messaging/sandbox/registry.py) ----------------------------------------

LABEL = "ZEGO"
BASE_PATH = "zego"
ENDPOINTS = ("GET /?Action=SendCustomCommand",)


@csrf_exempt
def zego_api(request: HttpRequest) -> JsonResponse:
    """GET /sandbox/zego/?Action=SendCustomCommand&... answered {Code, Message, RequestId, Data}."""
    request_id = new_request_id()
    status, data = 200, None
    try:
        if request.method != "GET":
            status = 405
            raise ZegoError(1, "SendCustomCommand is a GET request")
        app = authenticate(request.GET)
        data = send_custom_command(
            app, request.GET, request_id, arrival.received_at(request)
        )
        code, message = 0, "success"
    except ZegoError as exc:
        code, message = exc.code, exc.message
    except Exception:
        logger.exception("sandbox: ZEGO %s failed", request.GET.get("Action", ""))
        code, message = 100000015, "gateway internal error"
    answer = {"Code": code, "Message": message, "RequestId": request_id}
    if data is not None:
        answer["Data"] = data
    return JsonResponse(answer, status=status)


urlpatterns = [
    path("zego/", zego_api, name="zego-api"),
    # A base URL without the trailing slash must not get a redirect: API clients
    # do not follow them.
    path("zego", zego_api),
]
