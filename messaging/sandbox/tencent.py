"""The sandbox's Tencent REST API: query-string and UserSig checks, body checks,
limits, and delivery of room and broadcast messages.

Sources: docs/providers.md (Tencent sections), from the send_text_msg,
send_custom_msg, send_broadcast_msg and before-send webhook pages. Where the
documentation leaves a choice open the code says so (its UNCONFIRMED table) and
makes it a setting when it matters.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import secrets
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Any, Literal, overload

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt

from liveadmin import arrival
from messaging.sandbox import callbacks, limits
from messaging.sandbox.models import MessageKind, SandboxApp, SandboxRoom
from messaging.sandbox.services import (
    create_room,
    deliver_broadcast,
    destroy_room,
    is_muted,
    store_message,
    validate_room_id,
)
from messaging.sandbox.usersig import UserSigError, verify_usersig

logger = logging.getLogger(__name__)

LIVE = "live_engine_http_srv"
GROUP = "group_open_http_svc"
COMMANDS = {
    LIVE: {"send_text_msg", "send_custom_msg", "create_room", "destroy_room"},
    GROUP: {"send_broadcast_msg"},
}
UINT32_MAX = 4294967295
ACCOUNT_MAX_BYTES = 32
# One message: 12 KB on the current pages (older tables say 8 KB): the setting
# SANDBOX_MAX_MESSAGE_BYTES.
BROADCAST_MAX_BYTES = 12000

# TUILiveKit (live_engine) codes (docs/providers.md, "Tencent error codes").
LIVE_INTERNAL = 100001
LIVE_BAD_PARAM = 100002
LIVE_ROOM_EXISTS = 100003  # create_room page (trtc.io/document/63401)
LIVE_NO_ROOM = 100004
LIVE_NOT_LIVE = 100006
LIVE_MUTED = 100601
LIVE_FREQ = 100602
LIVE_TOO_LONG = 100603
# Chat group codes, from the send_broadcast_msg page.
GROUP_INTERNAL = 10002
GROUP_BAD_COMMAND = 10003
GROUP_BAD_PARAM = 10004
GROUP_NO_PERMISSION = 10007
GROUP_FREQ = 10023
MSG_TOO_LONG = 80002

_request_seq = itertools.count(1)

# Test mode, like a payment sandbox's magic card numbers: no input provokes the providers'
# internal errors, so a room ID (or a broadcast's From_Account) "sandbox-fail-<code>" answers
# with that code, for trying how a client handles them.
FORCED_FAILURE_PREFIX = "sandbox-fail-"
FORCEABLE_FAILURES = {
    LIVE_INTERNAL: "internal error, please try again (sandbox test trigger)",
    GROUP_INTERNAL: "internal error, please try again (sandbox test trigger)",
}


class ApiError(Exception):
    def __init__(self, code: int, info: str) -> None:
        super().__init__(info)
        self.code = code
        self.info = info


@dataclass(frozen=True)
class Call:
    """One authenticated API call."""

    app: SandboxApp
    identifier: str
    site_url: str
    client_ip: str
    request_id: str
    # time.time() when the request arrived: its rate limits count it then.
    received_at: float


def new_request_id() -> str:
    # Shaped like the pages' samples: Id-<32 hex>-O-Seq-<n> (docs/providers.md).
    return f"Id-{uuid.uuid4().hex}-O-Seq-{next(_request_seq)}"


def max_message_bytes() -> int:
    return int(settings.SANDBOX_MAX_MESSAGE_BYTES)


def _utf8_len(value: str) -> int:
    return len(value.encode())


def _uint32(raw: str | None) -> int | None:
    if raw is None or not raw.isdigit():
        return None
    value = int(raw)
    return value if value <= UINT32_MAX else None


# --- query string and UserSig ------------------------------------------------------


def authenticate(
    query: Any,
    *,
    site_url: str,
    client_ip: str,
    request_id: str,
    received_at: float,
) -> Call:
    """Check the five common query parameters and the UserSig (docs/providers.md, "Tencent REST API", "UserSig")."""
    raw_appid = query.get("sdkappid")
    if not raw_appid:
        raise ApiError(60012, "sdkappid is missing in the URL")
    sdkappid = _uint32(raw_appid)
    if sdkappid is None:
        raise ApiError(60006, "sdkappid is not a valid SDKAppID")
    if _uint32(query.get("random")) is None:
        raise ApiError(
            60002, "random must be a 32-bit unsigned integer (0 to 4294967295)"
        )
    if query.get("contenttype") != "json":
        raise ApiError(60002, "contenttype must be json")
    app = SandboxApp.objects.filter(provider="tencent", app_id=sdkappid).first()
    if app is None:
        raise ApiError(70020, "SDKAppID not found")
    identifier = query.get("identifier", "")
    if not identifier:
        raise ApiError(60004, "identifier is missing in the URL")
    try:
        verify_usersig(
            query.get("usersig", ""),
            sdkappid=sdkappid,
            identifier=identifier,
            key=app.secret,
        )
    except UserSigError as exc:
        raise ApiError(exc.code, exc.message) from None
    if not app.is_admin(identifier):
        raise ApiError(60010, "this API needs an app admin account as identifier")
    return Call(
        app=app,
        identifier=identifier,
        site_url=site_url,
        client_ip=client_ip,
        request_id=request_id,
        received_at=received_at,
    )


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise ApiError(60003, "request body is empty; send a JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(60003, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(60003, "request body must be a JSON object")
    return body


# --- field checks ------------------------------------------------------------------


@overload
def _string(
    body: dict, name: str, code: int, *, required: Literal[True] = True
) -> str: ...
@overload
def _string(body: dict, name: str, code: int, *, required: bool) -> str | None: ...
def _string(body: dict, name: str, code: int, *, required: bool = True) -> str | None:
    if name not in body or body[name] is None:
        if required:
            raise ApiError(code, f"{name} is required")
        return None
    value = body[name]
    if not isinstance(value, str):
        raise ApiError(code, f"{name} must be a string")
    if required and not value:
        raise ApiError(code, f"{name} cannot be empty")
    return value


@overload
def _account(body: dict, name: str, code: int, *, required: Literal[True]) -> str: ...
@overload
def _account(body: dict, name: str, code: int, *, required: bool) -> str | None: ...
def _account(body: dict, name: str, code: int, *, required: bool) -> str | None:
    if name in body and body[name] is not None and not isinstance(body[name], str):
        raise ApiError(60015, f"{name} must be a string")
    value = _string(body, name, code, required=required)
    if not value:
        return None
    if _utf8_len(value) > ACCOUNT_MAX_BYTES:
        raise ApiError(code, f"{name} is at most {ACCOUNT_MAX_BYTES} bytes")
    return value


def raise_forced_failure(value: str | None) -> None:
    """Answer a forceable code when ``value`` is its test trigger (see FORCED_FAILURE_PREFIX)."""
    if value and value.startswith(FORCED_FAILURE_PREFIX):
        code = value.removeprefix(FORCED_FAILURE_PREFIX)
        if code.isdigit() and int(code) in FORCEABLE_FAILURES:
            raise ApiError(int(code), FORCEABLE_FAILURES[int(code)])


def _room(call: Call, room_id: str) -> SandboxRoom:
    room = SandboxRoom.objects.filter(app=call.app, room_id=room_id).first()
    if room is None:
        raise ApiError(LIVE_NO_ROOM, f"room {room_id} does not exist")
    if not room.live:
        raise ApiError(LIVE_NOT_LIVE, f"room {room_id} is not a live room")
    return room


def _check_length(name: str, value: str, code: int) -> None:
    limit = max_message_bytes()
    if _utf8_len(value) > limit:
        raise ApiError(code, f"{name} is longer than {limit} bytes")


def _check_message_length(parts: dict[str, str], code: int) -> None:
    """The limit holds for the whole message, every content field together
    (docs/providers.md, "Limits"), not for each field alone."""
    limit = max_message_bytes()
    size = sum(_utf8_len(value) for value in parts.values())
    if size > limit:
        names = " + ".join(parts)
        raise ApiError(code, f"the message ({names}) is {size} bytes, over {limit}")


def text_message(body: dict) -> tuple[str, list[dict], str | None]:
    """send_text_msg: (sender, MsgBody, CloudCustomData) as the wrapper builds them."""
    sender = _account(body, "Sender_Account", LIVE_BAD_PARAM, required=True)
    text = _string(body, "TextContent", LIVE_BAD_PARAM)
    _check_length("TextContent", text, LIVE_TOO_LONG)
    ext = _string(body, "ExtensionInfo", LIVE_BAD_PARAM, required=False)
    if ext:
        _check_length("ExtensionInfo", ext, LIVE_TOO_LONG)
        try:
            json.loads(ext)
        except ValueError:
            raise ApiError(
                LIVE_BAD_PARAM, "ExtensionInfo must be a JSON string"
            ) from None
    else:
        # An empty ExtensionInfo is taken as absent (docs/providers.md, UNCONFIRMED).
        ext = None
    _check_message_length(
        {"TextContent": text, "ExtensionInfo": ext or ""}, LIVE_TOO_LONG
    )
    msg_body = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]
    return sender, msg_body, ext


def custom_message(body: dict, admin: str) -> tuple[str, list[dict], None]:
    """send_custom_msg: Data becomes the JSON string {"BusinessId","Data"} of a
    TIMCustomElem; without Sender_Account the admin identifier sends."""
    sender = _account(body, "Sender_Account", LIVE_BAD_PARAM, required=False) or admin
    business_id = _string(body, "BusinessId", LIVE_BAD_PARAM)
    if "Data" not in body or body["Data"] is None:
        raise ApiError(LIVE_BAD_PARAM, "Data is required")
    data = body["Data"]
    # The field table types Data as Integer while the sample sends a string: accept both.
    if isinstance(data, bool) or not isinstance(data, str | int):
        raise ApiError(LIVE_BAD_PARAM, "Data must be a string")
    if data == "":
        raise ApiError(LIVE_BAD_PARAM, "Data cannot be empty")
    _check_length("Data", str(data), LIVE_TOO_LONG)
    _check_message_length({"BusinessId": business_id, "Data": str(data)}, LIVE_TOO_LONG)
    wrapped = json.dumps(
        {"BusinessId": business_id, "Data": data},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    msg_body = [{"MsgType": "TIMCustomElem", "MsgContent": {"Data": wrapped}}]
    return sender, msg_body, None


# MsgContent fields the REST API requires per element type (docs/providers.md,
# "Message elements").
_REQUIRED_CONTENT: dict[str, dict[str, type | tuple[type, ...]]] = {
    "TIMTextElem": {"Text": str},
    "TIMCustomElem": {},
    "TIMFaceElem": {"Index": int},
    "TIMLocationElem": {
        "Desc": str,
        "Latitude": (int, float),
        "Longitude": (int, float),
    },
    "TIMSoundElem": {"Url": str, "UUID": str, "Download_Flag": int},
    "TIMImageElem": {"UUID": str, "ImageFormat": int, "ImageInfoArray": list},
    "TIMFileElem": {"Url": str, "UUID": str, "Download_Flag": int},
    "TIMVideoFileElem": {
        "VideoUrl": str,
        "VideoUUID": str,
        "ThumbUrl": str,
        "ThumbUUID": str,
        "ThumbWidth": int,
        "ThumbHeight": int,
        "VideoDownloadFlag": int,
        "ThumbDownloadFlag": int,
    },
}
_OPTIONAL_STRINGS = {
    "TIMCustomElem": ("Data", "Desc", "Ext", "Sound"),
    "TIMFaceElem": ("Data",),
}


def check_msg_body(value: Any, code: int) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise ApiError(code, "MsgBody must be a non-empty array")
    custom = 0
    for i, elem in enumerate(value):
        if not isinstance(elem, dict):
            raise ApiError(code, f"MsgBody[{i}] must be an object")
        kind = elem.get("MsgType")
        content = elem.get("MsgContent")
        if kind not in _REQUIRED_CONTENT:
            raise ApiError(code, f"MsgBody[{i}].MsgType {kind!r} is not a message type")
        if not isinstance(content, dict):
            raise ApiError(code, f"MsgBody[{i}].MsgContent must be an object")
        for field, types in _REQUIRED_CONTENT[kind].items():
            v = content.get(field)
            if v is None or isinstance(v, bool) or not isinstance(v, types):
                raise ApiError(code, f"MsgBody[{i}].MsgContent.{field} is required")
        for field in _OPTIONAL_STRINGS.get(kind, ()):
            if field in content and not isinstance(content[field], str):
                raise ApiError(
                    code, f"MsgBody[{i}].MsgContent.{field} must be a string"
                )
        custom += kind == "TIMCustomElem"
    if custom > 1:
        raise ApiError(code, "a message holds at most one TIMCustomElem")
    return value


# --- the APIs ----------------------------------------------------------------------


def check_api_rate(call: Call, command: str) -> None:
    # "200 times/second" is each live_engine API's own limit, per app.
    if not limits.acquire(
        f"{call.app.state_key}:{command}", "live_engine", call.received_at
    ):
        raise ApiError(LIVE_FREQ, "API call frequency over limit (200 per second)")


def create_live_room(call: Call, body: dict) -> dict[str, Any]:
    """create_room: RoomInfo{RoomId (<= 48 bytes), RoomType "Live", ...}."""
    check_api_rate(call, "create_room")
    info = body.get("RoomInfo")
    if not isinstance(info, dict):
        raise ApiError(LIVE_BAD_PARAM, "RoomInfo is required")
    room_id = _string(info, "RoomId", LIVE_BAD_PARAM)
    if info.get("RoomType") != "Live":
        raise ApiError(LIVE_BAD_PARAM, "RoomInfo.RoomType must be Live")
    _account(info, "Owner_Account", LIVE_BAD_PARAM, required=False)
    # The API's ErrorInfo is machine-facing: English whatever the caller's language.
    with translation.override("en"):
        try:
            room_id = validate_room_id(room_id)
        except ValidationError as exc:
            raise ApiError(LIVE_BAD_PARAM, " ".join(exc.messages)) from None
    if SandboxRoom.objects.filter(app=call.app, room_id=room_id).exists():
        raise ApiError(LIVE_ROOM_EXISTS, f"room {room_id} already exists")
    create_room(call.app, room_id)
    return {"RoomId": room_id}


def destroy_live_room(call: Call, body: dict) -> None:
    """destroy_room: RoomId of an existing room; its messages go with it."""
    check_api_rate(call, "destroy_room")
    room_id = _string(body, "RoomId", LIVE_BAD_PARAM)
    if not destroy_room(call.app, room_id):
        raise ApiError(LIVE_NO_ROOM, f"room {room_id} does not exist")


def _msg_id(sender: str, random: int) -> str:
    # Shaped like the doc's sample "<tinyid>-<unix seconds>-<random>" (docs/providers.md, UNCONFIRMED).
    tinyid = 144115200000000000 + zlib.crc32(sender.encode())
    return f"{tinyid}-{int(time.time())}-{random}"


def send_room_message(call: Call, command: str, body: dict) -> dict[str, Any]:
    """send_text_msg / send_custom_msg; returns the nested Response."""
    check_api_rate(call, command)
    room_id = _string(body, "RoomId", LIVE_BAD_PARAM)
    raise_forced_failure(room_id)
    if command == "send_text_msg":
        kind = MessageKind.TEXT
        sender, msg_body, ccd = text_message(body)
    else:
        kind = MessageKind.CUSTOM
        sender, msg_body, ccd = custom_message(body, call.identifier)
    room = _room(call, room_id)
    if is_muted(room, sender):
        raise ApiError(LIVE_MUTED, f"{sender} is muted in room {room.room_id}")

    # The wrapper picks the group message's Random itself (docs/providers.md, UNCONFIRMED).
    random = secrets.randbits(32)
    event = {
        "GroupId": room.room_id,
        "Type": "Live",
        "From_Account": sender,
        "Operator_Account": call.identifier,
        "Random": random,
        "MsgId": _msg_id(sender, random),
        "MsgBody": msg_body,
    }
    if ccd is not None:
        event["CloudCustomData"] = ccd
    answer = callbacks.before_send(
        call.app,
        site_url=call.site_url,
        client_ip=call.client_ip,
        payload={
            "CallbackCommand": callbacks.BEFORE_SEND,
            **event,
            "EventTime": int(time.time() * 1000),
        },
    )
    if answer.action == "reject":
        raise ApiError(answer.error_code, answer.error_info)

    drop_reason = ""
    deliver = answer.action == "deliver"
    if deliver and not limits.acquire(
        f"{call.app.state_key}:{room.pk}", "room", call.received_at
    ):
        # 40 messages a second per room: accepted, answered with ErrorCode 0, dropped.
        drop_reason, deliver = "MsgFreqCtrl", False
    final_ccd = answer.cloud_custom_data
    msg_seq, msg_time = store_message(
        room,
        kind=kind,
        sender=sender,
        msg_body=answer.msg_body if deliver else None,
        cloud_custom_data=final_ccd or "",
        random=random,
        request_id=call.request_id,
        modified=answer.modified,
    )
    if deliver:
        after = {
            "CallbackCommand": callbacks.AFTER_SEND,
            **event,
            "MsgBody": answer.msg_body,
            "MsgSeq": msg_seq,
            "MsgTime": msg_time,
            "EventTime": int(time.time() * 1000),
        }
        if final_ccd is not None:
            after["CloudCustomData"] = final_ccd
        callbacks.after_send(
            call.app, site_url=call.site_url, client_ip=call.client_ip, payload=after
        )
    return {"MsgTime": msg_time, "MsgSeq": msg_seq, "MsgDropReason": drop_reason}


def _dedup_key(sender: str, random: int, msg_body: list, ccd: str | None) -> str:
    # Seed page: "if the content and random numbers of two messages within five minutes
    # are the same, the later message will be discarded"; Use Limits says same sender and
    # Random. The exact key is UNCONFIRMED (docs/providers.md): SANDBOX_BROADCAST_DEDUP = "content" | "random".
    key = f"{sender}:{random}"
    if settings.SANDBOX_BROADCAST_DEDUP == "content":
        content = json.dumps([msg_body, ccd], sort_keys=True, ensure_ascii=False)
        key += ":" + hashlib.sha256(content.encode()).hexdigest()
    return key


def send_broadcast(call: Call, body: dict) -> dict[str, Any]:
    """send_broadcast_msg: one message to every live room of the app."""
    if not call.app.broadcast_enabled:
        raise ApiError(
            GROUP_NO_PERMISSION,
            "broadcast messaging of audio-video groups is not enabled for this app",
        )
    if not limits.acquire(call.app.state_key, "broadcast", call.received_at):
        raise ApiError(GROUP_FREQ, "send_broadcast_msg is limited to 1 call per second")
    sender = (
        _account(body, "From_Account", GROUP_BAD_PARAM, required=False)
        or call.identifier
    )
    raise_forced_failure(sender)
    random = body.get("Random")
    if (
        random is None
        or isinstance(random, bool)
        or not isinstance(random, int)
        or not 0 <= random <= UINT32_MAX
    ):
        raise ApiError(GROUP_BAD_PARAM, "Random must be a 32-bit unsigned integer")
    msg_body = check_msg_body(body.get("MsgBody"), GROUP_BAD_PARAM)
    ccd = _string(body, "CloudCustomData", GROUP_BAD_PARAM, required=False)
    size = _utf8_len(json.dumps(msg_body, ensure_ascii=False, separators=(",", ":")))
    if size > BROADCAST_MAX_BYTES:
        raise ApiError(
            MSG_TOO_LONG, f"MsgBody is {size} bytes; a broadcast is at most 12000 bytes"
        )

    key = _dedup_key(sender, random, msg_body, ccd)
    first, previous_seq = limits.claim_once(call.app.state_key, key)
    if not first:
        # A repeat within five minutes is discarded; the caller hears success with the
        # first message's MsgSeq (docs/providers.md, UNCONFIRMED).
        return {"MsgSeq": previous_seq or 0}
    try:
        seq = deliver_broadcast(
            call.app,
            sender=sender,
            msg_body=msg_body,
            cloud_custom_data=ccd or "",
            random=random,
        )
    except Exception:
        limits.forget(call.app.state_key, key)
        raise
    limits.remember(call.app.state_key, key, seq)
    return {"MsgSeq": seq}


# --- endpoint (messaging/sandbox/registry.py) ----------------------------------------

LABEL = "Tencent Cloud (TUILiveKit / Chat)"
BASE_PATH = ""
ENDPOINTS = (
    f"POST /v4/{LIVE}/send_text_msg",
    f"POST /v4/{LIVE}/send_custom_msg",
    f"POST /v4/{GROUP}/send_broadcast_msg",
)


@csrf_exempt
def tencent_api(request: HttpRequest, service: str, command: str) -> JsonResponse:
    """POST /sandbox/v4/<service>/<command>. Always HTTP 200; the result is in the body."""
    live = service == LIVE
    request_id = new_request_id()
    try:
        if service not in COMMANDS or (live and command not in COMMANDS[service]):
            raise ApiError(60009, f"unknown API v4/{service}/{command}")
        if request.method != "POST":
            raise ApiError(60002, "the REST API accepts POST only")
        call = authenticate(
            request.GET,
            site_url=f"{request.scheme}://{request.get_host()}",
            client_ip=request.META.get("REMOTE_ADDR", ""),
            request_id=request_id,
            received_at=arrival.received_at(request),
        )
        if command not in COMMANDS[service]:
            raise ApiError(GROUP_BAD_COMMAND, f"invalid command {command}")
        body = parse_body(request.body)
        if command == "create_room":
            result = {"Response": create_live_room(call, body)}
        elif command == "destroy_room":
            destroy_live_room(call, body)
            result = {}
        elif live:
            result = {"Response": send_room_message(call, command, body)}
        else:
            result = send_broadcast(call, body)
        code, info = 0, ""
    except ApiError as exc:
        code, info, result = exc.code, exc.info, {}
    except Exception:
        logger.exception("sandbox: v4/%s/%s failed", service, command)
        code = LIVE_INTERNAL if live else GROUP_INTERNAL
        info, result = "server internal error, please try again", {}
    answer: dict[str, Any] = {
        "ActionStatus": "OK" if code == 0 else "FAIL",
        "ErrorCode": code,
        "ErrorInfo": info,
    }
    if live:
        # TUILiveKit answers carry a RequestId on every request, results under Response.
        answer["RequestId"] = request_id
    answer.update(result)
    return JsonResponse(answer)


urlpatterns = [
    path("v4/<str:service>/<str:command>", tencent_api, name="tencent-api"),
]
