"""Tencent Cloud Chat / TUILiveKit REST client: room text and custom messages
(v4/live_engine_http_srv) and the broadcast to every live group (v4/group_open_http_svc).

A provider module of the registry (messaging/providers/__init__.py): LABEL, REGIONS,
KINDS, build_body, send, explain, drop_explanation. Every provider fact used here is in
docs/providers.md, with the provider page it comes from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise
from TLSSigAPIv2 import TLSSigAPIv2

from messaging.kinds import KINDS as KIND_SPECS
from messaging.kinds import (
    MAX_RANDOM,
    TENCENT_BROADCAST_BODY_BYTES,
    TENCENT_MESSAGE_BYTES,
    KindSpec,
    kinds_of,
)
from messaging.providers.base import (
    CodeInfo,
    Credentials,
    Outcome,
    SendResult,
    as_int,
    call,
    classify_code,
    explain_code,
    failure_outcome,
    permanent,
    retry_policy,
    retryable,
    utf8_len,
)
from messaging.rooms import room_id_error
from webhooks.vocabulary import FORBID_CODES

logger = logging.getLogger(__name__)

LABEL = "Tencent Cloud (TUILiveKit / Chat)"
KINDS = kinds_of("tencent")

# API domain per region (docs/providers.md, "Tencent regions").
REGIONS: dict[str, tuple[StrOrPromise, str]] = {
    # key: (label, primary domain)
    "china": (_("China"), "console.tim.qq.com"),
    "singapore": (_("Singapore"), "adminapisgp.im.qcloud.com"),
    "seoul": (_("Seoul"), "adminapikr.im.qcloud.com"),
    "frankfurt": (_("Frankfurt"), "adminapiger.im.qcloud.com"),
    "india": (_("India (Mumbai)"), "adminapiind.im.qcloud.com"),
    "silicon-valley": (_("Silicon Valley"), "adminapiusa.im.qcloud.com"),
    "jakarta": (_("Jakarta"), "adminapiidn.im.qcloud.com"),
}

PATHS: dict[str, str] = {
    "text": "v4/live_engine_http_srv/send_text_msg",
    "custom": "v4/live_engine_http_srv/send_custom_msg",
    "broadcast": "v4/group_open_http_svc/send_broadcast_msg",
}

# Limits (docs/providers.md, "Limits"), declared with the kinds.
MAX_MESSAGE_BYTES = TENCENT_MESSAGE_BYTES
MAX_BROADCAST_BODY_BYTES = TENCENT_BROADCAST_BODY_BYTES
MAX_USER_ID_BYTES = 32

# Admin UserSig: generated for a week and renewed a day before it runs out, so a
# long-running worker never sends an expired one (docs/providers.md, "UserSig").
USERSIG_EXPIRE_SECONDS = 7 * 86400
USERSIG_RENEW_BEFORE_SECONDS = 86400

USERSIG_EXPIRED = 70001

# Every documented code: retryable or permanent, and what it means for the person
# who pressed Send. docs/providers.md, "Tencent error codes", names the page of each
# group of codes; the guesses are in its UNCONFIRMED table.
CODES: dict[int, CodeInfo] = {
    # REST API common codes
    60002: permanent(
        _("The request URL could not be parsed. Check the app's base URL.")
    ),
    60003: permanent(_("The request body is not valid JSON.")),
    60004: permanent(
        _(
            "Account or signature error in the request. Check the admin identifier and secret key."
        )
    ),
    60005: permanent(
        _(
            "Account or signature error in the request. Check the admin identifier and secret key."
        )
    ),
    60006: permanent(_("The SDKAppID is not valid. Check the app ID and its region.")),
    60007: retryable(
        _(
            "Too many REST API calls for this app right now. Sending again shortly will work."
        ),
        1.0,
    ),
    60008: retryable(_("The provider timed out handling the request. Retry."), 1.0),
    60009: permanent(_("The provider does not know this API. Check the base URL.")),
    60010: permanent(
        _(
            "The admin identifier is not an app administrator. Use an admin account from the Chat console."
        )
    ),
    60011: retryable(
        _(
            "The app's overall request rate limit was hit. Sending again shortly will work."
        ),
        1.0,
    ),
    60012: permanent(_("The request has no SDKAppID.")),
    60013: retryable(_("The provider could not encode its answer. Retry."), 1.0),
    60014: retryable(_("The provider timed out switching accounts. Retry."), 1.0),
    60015: permanent(
        _("An account in the request has the wrong type (accounts must be strings).")
    ),
    60016: permanent(_("This SDKAppID is disabled at the provider.")),
    60017: permanent(_("This request is disabled for the app at the provider.")),
    60018: retryable(_("Too many requests. Retry later."), 2.0),
    60019: retryable(_("Too many requests. Retry later."), 2.0),
    60020: permanent(
        _("The app's paid edition has expired or is disabled. Renew it in the console.")
    ),
    60021: permanent(
        _(
            "This server's IP address is not allowed to call the REST API. Check the console's IP allowlist."
        )
    ),
    # Account / UserSig codes
    70001: retryable(
        _(
            "The admin UserSig had expired. A fresh one was generated; retry if it still failed."
        ),
        1.0,
    ),
    70002: permanent(_("The UserSig is empty.")),
    70003: permanent(_("The UserSig could not be parsed (often a truncated UserSig).")),
    70005: permanent(_("The UserSig is not valid.")),
    70009: permanent(
        _(
            "The UserSig does not verify: the secret key probably belongs to another SDKAppID or region."
        )
    ),
    70013: permanent(_("The admin identifier does not match the UserSig.")),
    70014: permanent(_("The SDKAppID does not match the UserSig.")),
    70016: permanent(
        _(
            "The provider has no key for this SDKAppID. Check the app ID and its data center (region)."
        )
    ),
    70020: permanent(_("The SDKAppID was not found. Check the app ID and its region.")),
    70050: retryable(
        _("Too many failed UserSig checks; the provider blocks calls for a minute."),
        60.0,
    ),
    70051: permanent(_("The admin account is blocklisted at the provider.")),
    70107: permanent(_("The account was never imported at the provider.")),
    70114: retryable(_("Logins are being throttled. Retry later."), 10.0),
    70169: retryable(_("The provider timed out. Retry."), 1.0),
    70202: retryable(_("The provider timed out. Retry."), 1.0),
    70206: permanent(_("Invalid batch size in the request.")),
    70398: permanent(
        _("The app has reached its account limit (free edition: 100 accounts).")
    ),
    70402: permanent(_("A parameter of the request is not valid.")),
    70403: permanent(_("The request needs app administrator permission.")),
    70500: retryable(_("Internal error at the provider. Retry."), 1.0),
    # Message codes shared by the message APIs
    80001: permanent(_("The text hit the provider's sensitive-word filter.")),
    # UNCONFIRMED which code an oversized broadcast gets (docs/providers.md).
    80002: permanent(_("The message is too long (the limit is 12 KB).")),
    80003: retryable(
        _(
            "The before-send webhook failed or timed out and the app is set to not deliver then. Check the webhook, then retry."
        ),
        5.0,
    ),
    80004: permanent(_("An image in the message hit the provider's content filter.")),
    90002: permanent(_("MsgBody is not a valid array of message elements.")),
    90007: permanent(_("MsgBody contains an invalid message element.")),
    90010: permanent(_("MsgBody contains an invalid message element.")),
    90055: permanent(_("The batch request is larger than 8 KB.")),
    93000: permanent(_("The JSON request is larger than the provider accepts.")),
    10018: permanent(_("The answer would exceed 1 MB: the request asks for too much.")),
    # Group codes (send_broadcast_msg page and the error code page)
    10002: retryable(_("Internal error at the provider. Retry."), 1.0),
    10003: permanent(_("The provider does not know this command.")),
    10004: permanent(_("A parameter of the request is not valid.")),
    10005: permanent(_("Too many accounts in the request.")),
    10006: retryable(_("Operations are being rate limited. Retry shortly."), 1.0),
    10007: permanent(
        _(
            "No permission: e.g. live-group broadcasts are not enabled in the console, or the account may not do this."
        )
    ),
    10010: permanent(_("The group (room) no longer exists.")),
    10015: permanent(_("The group (room) ID is not valid.")),
    10016: permanent(_("The app's before-send webhook refused the message.")),
    10017: permanent(_("The sender is muted and cannot send messages.")),
    10023: retryable(_("Message frequency limit reached. Retry shortly."), 1.0),
    10030: permanent(_("The message cannot be recalled.")),
    10031: permanent(_("The message cannot be recalled.")),
    10032: permanent(_("The message cannot be recalled.")),
    10033: permanent(_("The message cannot be recalled.")),
    10035: permanent(_("Live (audio-video) groups keep no messages to delete.")),
    10041: permanent(_("The message cannot be recalled.")),
    # TUILiveKit live_engine_http_srv codes (send_text_msg and send_custom_msg pages)
    100001: retryable(_("Internal error at the provider. Retry."), 1.0),
    100002: permanent(_("A parameter of the request is not valid.")),
    100004: permanent(
        _("The room does not exist: it was never created or has been dissolved.")
    ),
    100006: permanent(_("This room is not a live room.")),
    100601: permanent(_("The sender is muted in this room.")),
    # UNCONFIRMED (docs/providers.md): 100602 for a live_engine overrun; the
    # common table has 60007. Both are retried.
    100602: retryable(
        _("The room's message frequency limit was reached. Retry shortly."), 1.0
    ),
    100603: permanent(_("The message is too long (the limit is 12 KB).")),
}

# Codes 10100..10200 are chosen by the app's own before-send webhook to refuse a
# message with a reason of its own (docs/providers.md, "Before-send webhook"); the
# range has one home.
WEBHOOK_CODES = FORBID_CODES


def classify(code: int) -> CodeInfo:
    if code in WEBHOOK_CODES and code not in CODES:
        return permanent(
            gettext(
                "The app's before-send webhook refused the message (code %(code)s)."
            )
            % {"code": code}
        )
    return classify_code(
        CODES, code, unknown=_("The provider refused the request with code %(code)s.")
    )


def explain(code: int | None) -> str:
    return explain_code(classify, code)


# --- validation and request bodies -----------------------------------------------------


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _add(errors: dict[str, list[str]], name: str, message: str) -> None:
    errors.setdefault(name, []).append(message)


def _check_room(errors: dict[str, list[str]], room_id: str) -> None:
    if not room_id:
        _add(errors, "room_id", gettext("Enter the room ID."))
    elif problem := room_id_error(room_id, "tencent"):
        _add(errors, "room_id", problem)


def _check_account(
    errors: dict[str, list[str]], name: str, value: str, *, required: bool
) -> None:
    if not value:
        if required:
            _add(errors, name, gettext("Enter the sender's user ID."))
    elif utf8_len(value) > MAX_USER_ID_BYTES:
        _add(
            errors,
            name,
            gettext("A user ID is at most %(limit)s bytes.")
            % {"limit": MAX_USER_ID_BYTES},
        )


def _size_message(name: str) -> str:
    """The over-the-limit message of field ``name`` (one whole sentence each)."""
    if name == "text":
        return gettext(
            "The text is %(size)s bytes; the limit is %(limit)s bytes (12 KB)."
        )
    if name == "extension_info":
        return gettext(
            "Extension info is %(size)s bytes; the limit is %(limit)s bytes (12 KB)."
        )
    if name == "data":
        return gettext(
            "The data is %(size)s bytes; the limit is %(limit)s bytes (12 KB)."
        )
    return gettext(
        "Cloud custom data is %(size)s bytes; the limit is %(limit)s bytes (12 KB)."
    )


def _check_size(
    errors: dict[str, list[str]], name: str, value: str, limit: int
) -> None:
    size = utf8_len(value)
    if size > limit:
        _add(
            errors,
            name,
            _size_message(name) % {"size": f"{size:,}", "limit": f"{limit:,}"},
        )


def _check_message_size(
    errors: dict[str, list[str]], spec: KindSpec, fields: dict[str, str]
) -> None:
    """The provider counts its 12 KB over the whole message, not per field
    (docs/providers.md, "Limits"): the counted fields together must fit."""
    if spec.message_bytes is None or errors.keys() & set(spec.counted_fields):
        return
    size = sum(utf8_len(fields[name]) for name in spec.counted_fields)
    if size > spec.message_bytes:
        first, second = (str(spec.field(n).label) for n in spec.counted_fields)
        _add(
            errors,
            spec.counted_fields[-1],
            gettext(
                "The message is %(size)s bytes (%(first)s and %(second)s together); "
                "the limit is %(limit)s bytes (12 KB)."
            )
            % {
                "size": f"{size:,}",
                "first": first.lower(),
                "second": second.lower(),
                "limit": f"{spec.message_bytes:,}",
            },
        )


def build_text_body(fields: dict[str, Any]) -> tuple[dict, dict[str, list[str]]]:
    """send_text_msg: RoomId, Sender_Account, TextContent, optional ExtensionInfo."""
    errors: dict[str, list[str]] = {}
    room_id = _text(fields, "room_id").strip()
    sender = _text(fields, "sender").strip()
    text = _text(fields, "text")
    extension = _text(fields, "extension_info").strip()
    _check_room(errors, room_id)
    _check_account(errors, "sender", sender, required=True)
    if not text.strip():
        _add(errors, "text", gettext("Enter the message text."))
    else:
        _check_size(errors, "text", text, MAX_MESSAGE_BYTES)
    if extension:
        try:
            json.loads(extension)
        except ValueError as exc:
            _add(
                errors,
                "extension_info",
                gettext("Extension info must be JSON (%(error)s).") % {"error": exc},
            )
        _check_size(errors, "extension_info", extension, MAX_MESSAGE_BYTES)
    body: dict[str, Any] = {
        "RoomId": room_id,
        "Sender_Account": sender,
        "TextContent": text,
    }
    if extension:
        body["ExtensionInfo"] = extension
    _check_message_size(
        errors,
        KIND_SPECS["text"],
        {"text": text, "extension_info": extension},
    )
    return body, errors


def build_custom_body(fields: dict[str, Any]) -> tuple[dict, dict[str, list[str]]]:
    """send_custom_msg: RoomId, optional Sender_Account, BusinessId, Data."""
    errors: dict[str, list[str]] = {}
    room_id = _text(fields, "room_id").strip()
    sender = _text(fields, "sender").strip()
    business_id = _text(fields, "business_id").strip()
    data = _text(fields, "data")
    _check_room(errors, room_id)
    _check_account(errors, "sender", sender, required=False)
    if not business_id:
        _add(
            errors,
            "business_id",
            gettext("Enter the business ID (the message's mark)."),
        )
    if not data:
        _add(errors, "data", gettext("Enter the data."))
    else:
        _check_size(errors, "data", data, MAX_MESSAGE_BYTES)
    body: dict[str, Any] = {"RoomId": room_id}
    if sender:
        body["Sender_Account"] = sender
    body["BusinessId"] = business_id
    body["Data"] = data
    _check_message_size(
        errors, KIND_SPECS["custom"], {"business_id": business_id, "data": data}
    )
    return body, errors


def build_broadcast_body(fields: dict[str, Any]) -> tuple[dict, dict[str, list[str]]]:
    """send_broadcast_msg: optional From_Account, Random, MsgBody, optional CloudCustomData.

    ``fields["random"]`` may carry the de-duplication Random (kept across retries);
    without it a fresh one is drawn.
    """
    errors: dict[str, list[str]] = {}
    from_account = _text(fields, "from_account").strip()
    text = _text(fields, "text")
    custom_data = _text(fields, "custom_data")
    cloud = _text(fields, "cloud_custom_data")
    _check_account(errors, "from_account", from_account, required=False)
    has_text, has_custom = bool(text.strip()), bool(custom_data)
    if has_text and has_custom:
        _add(
            errors,
            "custom_data",
            gettext("Give either a text or custom data, not both."),
        )
    elif not has_text and not has_custom:
        _add(errors, "text", gettext("Enter a text, or custom data instead."))
    if has_text:
        element = {"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}
    else:
        element = {"MsgType": "TIMCustomElem", "MsgContent": {"Data": custom_data}}
    msg_body = [element]
    size = utf8_len(json.dumps(msg_body, ensure_ascii=False, separators=(",", ":")))
    if (has_text or has_custom) and size > MAX_BROADCAST_BODY_BYTES:
        _add(
            errors,
            "text" if has_text else "custom_data",
            gettext(
                "The message body is %(size)s bytes; a broadcast is at most %(limit)s bytes."
            )
            % {"size": f"{size:,}", "limit": f"{MAX_BROADCAST_BODY_BYTES:,}"},
        )
    if cloud:
        _check_size(errors, "cloud_custom_data", cloud, MAX_MESSAGE_BYTES)
    random_value = fields.get("random")
    if random_value in (None, ""):
        random_value = secrets.randbelow(MAX_RANDOM + 1)
    else:
        random_value = as_int(random_value)
        if random_value is None or not 0 <= random_value <= MAX_RANDOM:
            _add(
                errors,
                "random",
                gettext("Random must be an integer 0..%(max)s.") % {"max": MAX_RANDOM},
            )
            random_value = 0
    body: dict[str, Any] = {}
    if from_account:
        body["From_Account"] = from_account
    body["Random"] = random_value
    body["MsgBody"] = msg_body
    if cloud:
        body["CloudCustomData"] = cloud
    return body, errors


BUILDERS = {
    "text": build_text_body,
    "custom": build_custom_body,
    "broadcast": build_broadcast_body,
}


def build_body(
    kind: str, fields: dict[str, Any], *, default_sender: str = ""
) -> tuple[dict, dict[str, list[str]]]:
    """The exact body of ``kind`` from the form's fields, and the errors by field.
    (Tencent's senders are explicit, so ``default_sender`` is not used.)"""
    return BUILDERS[kind](fields)


# --- UserSig ------------------------------------------------------------------------------

_usersigs: dict[tuple[int, str, str], tuple[str, float]] = {}
_usersig_lock = threading.Lock()


def _cache_key(creds: Credentials) -> tuple[int, str, str]:
    # The key's hash, not the key, so a rotated secret gets a new UserSig at once.
    return (
        creds.app_id,
        creds.identifier,
        hashlib.sha256(creds.secret.encode()).hexdigest(),
    )


def usersig(creds: Credentials, *, refresh: bool = False) -> str:
    """The admin UserSig for ``creds``, cached in the process until a day before it
    expires (not regenerated per request). ``refresh`` forces a new one (after 70001).
    """
    key = _cache_key(creds)
    now = time.time()
    with _usersig_lock:
        cached = _usersigs.get(key)
        if cached and not refresh and now < cached[1]:
            return cached[0]
        sig = TLSSigAPIv2(creds.app_id, creds.secret).gen_sig(
            creds.identifier, USERSIG_EXPIRE_SECONDS
        )
        _usersigs[key] = (
            sig,
            now + USERSIG_EXPIRE_SECONDS - USERSIG_RENEW_BEFORE_SECONDS,
        )
        return sig


def query_params(creds: Credentials, sig: str) -> dict[str, str]:
    """The five common query parameters; ``random`` is fresh for every request."""
    return {
        "sdkappid": str(creds.app_id),
        "identifier": creds.identifier,
        "usersig": sig,
        "random": str(secrets.randbelow(MAX_RANDOM + 1)),
        "contenttype": "json",
    }


# --- sending and answers -----------------------------------------------------------------


def send(creds: Credentials, kind: str, body: dict) -> SendResult:
    """POST ``body`` to the API of ``kind``; one SendResult whatever happens.

    An expired UserSig (70001) is regenerated once and the request repeated: the
    first request was refused at the door, so repeating it cannot duplicate.
    """
    url = f"{creds.base_url.rstrip('/')}/{PATHS[kind]}"
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    what = f"tencent {kind} app={creds.app_id}"
    result = _post(creds, url, payload, what, refresh=False)
    if result.error_code == USERSIG_EXPIRED:
        logger.info("%s: UserSig expired (70001), regenerating once", what)
        result = _post(creds, url, payload, what, refresh=True)
    return result


def _post(
    creds: Credentials, url: str, payload: bytes, what: str, *, refresh: bool
) -> SendResult:
    return call(
        "POST",
        url,
        what=what,
        parse=_parse,
        params=query_params(creds, usersig(creds, refresh=refresh)),
        content=payload,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )


def _parse(data: dict[str, Any], http_status: int, latency_ms: int) -> SendResult:
    return parse_response(data, http_status=http_status, latency_ms=latency_ms)


def parse_response(
    data: dict[str, Any], *, http_status: int | None = 200, latency_ms: int = 0
) -> SendResult:
    """Read an answer: live_engine APIs nest MsgTime/MsgSeq/MsgDropReason under
    ``Response``; group APIs put them at the top level."""
    nested = data.get("Response")
    inner = nested if isinstance(nested, dict) else {}

    def pick(name: str) -> Any:
        return inner.get(name, data.get(name))

    code = as_int(data.get("ErrorCode"))
    action_status = str(data.get("ActionStatus") or "")
    error_info = str(data.get("ErrorInfo") or "")
    drop_reason = str(pick("MsgDropReason") or "")
    common: dict[str, Any] = {
        "action_status": action_status,
        "error_code": code,
        "error_info": error_info,
        "request_id": str(data.get("RequestId") or ""),
        "msg_seq": as_int(pick("MsgSeq")),
        "msg_time": as_int(pick("MsgTime")),
        "drop_reason": drop_reason,
        "http_status": http_status,
        "latency_ms": latency_ms,
        "response_body": data,
    }
    if code is None:
        return SendResult(
            outcome=failure_outcome("no_code"),
            explanation=gettext(
                "The provider's answer has no ErrorCode; whether the message was "
                "delivered is unknown."
            ),
            retryable=retry_policy("no_code")[0],
            **common,
        )
    if code == 0 and action_status.upper() != "FAIL":
        if drop_reason:
            # Accepted, but not delivered (MsgFreqCtrl: the room is over 40 msg/s).
            is_retryable, retry_after = retry_policy("dropped")
            return SendResult(
                outcome=Outcome.DROPPED,
                explanation=drop_explanation(drop_reason),
                retryable=is_retryable,
                retry_after=retry_after,
                **common,
            )
        return SendResult(outcome=Outcome.OK, explanation=gettext("Sent."), **common)
    info = classify(code)
    is_retryable, retry_after = retry_policy("code", info)
    return SendResult(
        outcome=Outcome.FAILED,
        explanation=str(info.explanation),
        retryable=is_retryable,
        retry_after=retry_after,
        **common,
    )


def drop_explanation(reason: str) -> str:
    if reason == "MsgFreqCtrl":
        return gettext(
            "Accepted but not delivered: the room is over its limit of 40 messages "
            "per second (MsgFreqCtrl). Send it again in a moment."
        )
    return gettext("Accepted but not delivered by the provider (%(reason)s).") % {
        "reason": reason
    }


# --- credential check (a harmless call that proves the secret and identifier) -------
# A room text message to a room ID that cannot exist: the provider checks the UserSig
# before it looks the room up, so "no such room" means the credentials were accepted.
CHECK_KIND = "text"
CHECK_ACCEPTED = frozenset({10010, 10015, 100004})
# Account, signature and app errors (PROVIDERS.md 1.3): the credentials were refused.
CHECK_REFUSED = frozenset(
    {60004, 60005, 60006, 60010, 60012, 60016, 60020, 60021}
    | {70001, 70002, 70003, 70005, 70009, 70013, 70014, 70016, 70020}
    | {70050, 70051, 70403}
)


def check_fields(room_id: str, identifier: str) -> dict[str, str]:
    return {
        "room_id": room_id,
        "sender": identifier,
        "text": "LiveAdmin credential check",
    }
