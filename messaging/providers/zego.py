"""ZEGO server API v2 client: ``Action=SendCustomCommand`` (a custom signalling
message to users of a room).

A provider module of the registry (messaging/providers/__init__.py): LABEL, REGIONS,
KINDS, build_body, send, explain, drop_explanation. Every provider fact used here is in
docs/providers.md, with the provider page it comes from.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from messaging.kinds import ZEGO_CONTENT_BYTES, ZEGO_MAX_RECIPIENTS, kinds_of
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
from messaging.rooms import MAX_ROOM_ID_BYTES

logger = logging.getLogger(__name__)

LABEL = "ZEGO"
KINDS = kinds_of("zego")

# Server API hosts (docs/providers.md, "ZEGO regions").
REGIONS: dict[str, tuple[StrOrPromise, str]] = {
    "global": (_("Global (nearest)"), "rtc-api.zego.im"),
    "sha": (_("Shanghai"), "rtc-api-sha.zego.im"),
    "hkg": (_("Hong Kong"), "rtc-api-hkg.zego.im"),
    "fra": (_("Frankfurt"), "rtc-api-fra.zego.im"),
    "lax": (_("Los Angeles"), "rtc-api-lax.zego.im"),
    "bom": (_("Mumbai"), "rtc-api-bom.zego.im"),
    "sgp": (_("Singapore"), "rtc-api-sgp.zego.im"),
}

ACTION = "SendCustomCommand"
MAX_CONTENT_BYTES = ZEGO_CONTENT_BYTES
MAX_RECIPIENTS = ZEGO_MAX_RECIPIENTS
# ZEGO's user ID limit (Express SDK: up to 64 bytes; the server API pages give none
# of their own). Room-ID limits live in messaging.rooms.
MAX_USER_ID_BYTES = 64

# Every documented return code (docs/providers.md, "ZEGO return codes").
CODES: dict[int, CodeInfo] = {
    # Gateway / public-parameter codes
    100000000: permanent(
        _("The request's Host header is wrong. Check the app's base URL.")
    ),
    100000001: permanent(_("The AppId is not valid.")),
    100000002: permanent(_("The request has no Timestamp.")),
    100000003: permanent(_("The Timestamp is not valid.")),
    100000004: permanent(
        _("The signature has expired: this server's clock is more than 10 minutes off.")
    ),
    100000005: permanent(_("The signature is wrong: check the ServerSecret.")),
    100000006: permanent(_("The request has no Action.")),
    100000007: permanent(_("ZEGO does not support this Action.")),
    100000008: permanent(_("The request has no SignatureNonce.")),
    100000009: permanent(_("The request has no Signature.")),
    100000010: permanent(
        _("ZEGO has no ServerSecret for this AppId. Check the AppId.")
    ),
    100000011: retryable(_("ZEGO could not load the app's configuration. Retry."), 1.0),
    100000012: permanent(_("ZEGO could not read the request body.")),
    100000013: permanent(_("The request has no SignatureVersion.")),
    100000014: permanent(_("Unsupported SignatureVersion (only 2.0 is).")),
    100000015: retryable(_("Internal error at ZEGO's gateway. Retry."), 1.0),
    100000016: permanent(_("The app has no production environment (check IsTest).")),
    100000017: permanent(_("This service is not enabled for the app.")),
    # Room signalling codes
    1: retryable(_("ZEGO could not carry out the request. Retry."), 1.0),
    2: permanent(_("A parameter of the request is not valid.")),
    3: permanent(_("A parameter of the request is too long.")),
    7: retryable(_("Too many requests for this app right now. Retry shortly."), 1.0),
    8: permanent(_("ZEGO could not decode the request.")),
    9: permanent(_("The app has no permission for this API.")),
    104: permanent(_("The room does not exist.")),
    105: permanent(_("The user does not exist.")),
    121: retryable(_("ZEGO could not send the room message. Retry."), 1.0),
    122: retryable(_("ZEGO could not send the room message. Retry."), 1.0),
    151: retryable(_("ZEGO could not send the room message. Retry."), 1.0),
    206: retryable(_("The app's request rate limit was hit. Retry shortly."), 1.0),
    207: retryable(_("The room's request rate limit was hit. Retry shortly."), 1.0),
    1008: permanent(_("The message content is empty.")),
    5018: permanent(_("The room has been destroyed.")),
    5024: permanent(_("The room does not exist.")),
    5201: retryable(_("ZEGO could not send the room message. Retry."), 1.0),
    5202: retryable(_("ZEGO could not send the room message. Retry."), 1.0),
    50001: permanent(
        _("The room does not exist (rooms close when their last user leaves).")
    ),
    # UNCONFIRMED: 50002 and 50004 are on the SendCustomCommand page but not in the
    # 2025 global list (docs/providers.md).
    50002: permanent(_("The user ID does not exist.")),
    # Top-level 50003 is "failed to get online user count" (the SendCustomCommand
    # page); only in Data.FailUsers does 50003 mean "this recipient is offline".
    50003: retryable(_("ZEGO could not get the room's online user count. Retry."), 1.0),
    50004: retryable(_("ZEGO could not get the user information. Retry."), 1.0),
    50011: permanent(_("Too many recipients: at most 10.")),
    50012: permanent(_("The message content is too long: at most 1024 bytes.")),
    50013: retryable(_("ZEGO failed to send the custom message. Retry."), 1.0),
    50123: permanent(_("Too many forbid rules.")),
    50124: permanent(_("The forbid rule was not found.")),
}


# Per-recipient codes in Data.FailUsers (docs/providers.md, "ZEGO return codes").
RECIPIENT_CODES: dict[int, str] = {50003: "not online"}


def classify(code: int) -> CodeInfo:
    return classify_code(
        CODES, code, unknown=_("ZEGO refused the request with code %(code)s.")
    )


def explain(code: int | None) -> str:
    return explain_code(classify, code)


def drop_explanation(reason: str) -> str:
    """Why an accepted command reached nobody (``reason``: "FailUsers:uid=code,...")."""
    codes = {code for _, _, code in (item.partition("=") for item in reason.split(","))}
    meanings = {
        RECIPIENT_CODES.get(as_int(code) or 0, f"code {code}") for code in codes
    }
    if not reason or meanings <= {"not online"}:
        return gettext(
            "Accepted, but none of the recipients got it (they are offline)."
        )
    return gettext("Accepted, but none of the recipients got it (%(reason)s).") % {
        "reason": reason
    }


# --- validation and request parameters ----------------------------------------------------


def _add(errors: dict[str, list[str]], name: str, message: str) -> None:
    errors.setdefault(name, []).append(message)


def build_body(
    kind: str, fields: dict[str, Any], *, default_sender: str = ""
) -> tuple[dict, dict[str, list[str]]]:
    """The request of ``kind`` (only ``command``); a missing sender is ``default_sender``."""
    return build_command_params(fields, default_from=default_sender)


def build_command_params(
    fields: dict[str, Any], *, default_from: str = ""
) -> tuple[dict, dict[str, list[str]]]:
    """SendCustomCommand business parameters: RoomId, FromUserId, ToUserId[] (at most
    10; none = the whole room), MessageContent (at most 1024 bytes)."""
    errors: dict[str, list[str]] = {}
    room_id = str(fields.get("room_id") or "").strip()
    from_user = str(fields.get("from_user") or "").strip() or default_from
    raw_to = fields.get("to_users") or []
    if isinstance(raw_to, str):
        raw_to = raw_to.replace(",", "\n").splitlines()
    to_users: list[str] = []
    for user in raw_to:
        user = str(user).strip()
        if user and user not in to_users:
            to_users.append(user)
    content = str(fields.get("content") or "")

    if not room_id:
        _add(errors, "room_id", gettext("Enter the room ID."))
    elif utf8_len(room_id) > MAX_ROOM_ID_BYTES["zego"]:
        _add(
            errors,
            "room_id",
            gettext("A room ID is at most %(limit)s bytes.")
            % {"limit": MAX_ROOM_ID_BYTES["zego"]},
        )
    if not from_user:
        _add(errors, "from_user", gettext("Enter the sender's user ID."))
    elif utf8_len(from_user) > MAX_USER_ID_BYTES:
        _add(
            errors,
            "from_user",
            gettext("A user ID is at most %(limit)s bytes.")
            % {"limit": MAX_USER_ID_BYTES},
        )
    if len(to_users) > MAX_RECIPIENTS:
        _add(
            errors,
            "to_users",
            gettext(
                "%(count)s recipients; at most %(max)s (leave empty for the whole room)."
            )
            % {"count": len(to_users), "max": MAX_RECIPIENTS},
        )
    too_long = [u for u in to_users if utf8_len(u) > MAX_USER_ID_BYTES]
    if too_long:
        _add(
            errors,
            "to_users",
            gettext("A user ID is at most %(limit)s bytes: %(ids)s")
            % {"limit": MAX_USER_ID_BYTES, "ids": ", ".join(too_long[:3])},
        )
    if not content:
        _add(errors, "content", gettext("Enter the message content."))
    elif utf8_len(content) > MAX_CONTENT_BYTES:
        _add(
            errors,
            "content",
            gettext("The content is %(size)s bytes; the limit is %(limit)s bytes.")
            % {"size": f"{utf8_len(content):,}", "limit": MAX_CONTENT_BYTES},
        )
    params: dict[str, Any] = {"RoomId": room_id, "FromUserId": from_user}
    if to_users:
        params["ToUserId[]"] = to_users
    params["MessageContent"] = content
    return params, errors


# --- signing, sending and answers ----------------------------------------------------------


def signature(app_id: int, nonce: str, secret: str, timestamp: int) -> str:
    """md5(AppId + SignatureNonce + ServerSecret + Timestamp), lowercase hex."""
    return hashlib.md5(
        f"{app_id}{nonce}{secret}{timestamp}".encode(), usedforsecurity=False
    ).hexdigest()


def signed_query(
    creds: Credentials,
    params: dict[str, Any],
    *,
    nonce: str | None = None,
    timestamp: int | None = None,
) -> list[tuple[str, str]]:
    """The whole query string as pairs: Action, business parameters (arrays repeated
    as ``Name[]``), then the public parameters with a fresh nonce and signature."""
    nonce = nonce if nonce is not None else secrets.token_hex(8)
    timestamp = timestamp if timestamp is not None else int(time.time())
    query: list[tuple[str, str]] = [("Action", ACTION)]
    for name, value in params.items():
        if isinstance(value, list):
            query.extend((name, str(item)) for item in value)
        else:
            query.append((name, str(value)))
    query += [
        ("AppId", str(creds.app_id)),
        ("SignatureNonce", nonce),
        ("Timestamp", str(timestamp)),
        ("Signature", signature(creds.app_id, nonce, creds.secret, timestamp)),
        ("SignatureVersion", "2.0"),
    ]
    if creds.test_environment:
        # The project's test environment (10 requests/s); omitted means production.
        query.append(("IsTest", "true"))
    return query


def send(creds: Credentials, kind: str, params: dict) -> SendResult:
    """GET ``{base}/?Action=SendCustomCommand&...``; one SendResult whatever happens."""
    recipients = params.get("ToUserId[]") or []

    def parse(data: dict[str, Any], http_status: int, latency_ms: int) -> SendResult:
        return parse_response(
            data, recipients=recipients, http_status=http_status, latency_ms=latency_ms
        )

    return call(
        "GET",
        f"{creds.base_url.rstrip('/')}/",
        what=f"zego {kind} app={creds.app_id}",
        parse=parse,
        params=tuple(signed_query(creds, params)),
    )


def parse_response(
    data: dict[str, Any],
    *,
    recipients: Sequence[str] = (),
    http_status: int | None = 200,
    latency_ms: int = 0,
) -> SendResult:
    """Read ``{Code, Message, RequestId, Data}``. ``Data.FailUsers`` lists recipients
    that did not get the command (50003 = offline): if every named recipient failed,
    the command was accepted but reached nobody, so it counts as dropped."""
    code = as_int(data.get("Code"))
    message = str(data.get("Message") or "")
    payload = data.get("Data")
    fail_users = payload.get("FailUsers") if isinstance(payload, dict) else None
    failed = [
        f"{item.get('Uid', '?')}={item.get('Code', '?')}"
        for item in fail_users or []
        if isinstance(item, dict)
    ]
    common: dict[str, Any] = {
        "action_status": "OK" if code == 0 else "FAIL",
        "error_code": code,
        "request_id": str(data.get("RequestId") or ""),
        "http_status": http_status,
        "latency_ms": latency_ms,
        "response_body": data,
    }
    if code is None:
        return SendResult(
            outcome=failure_outcome("no_code"),
            error_info=message,
            explanation=gettext(
                "ZEGO's answer has no Code; whether the command was delivered is unknown."
            ),
            retryable=retry_policy("no_code")[0],
            **common,
        )
    if code == 0:
        if failed and recipients and len(failed) >= len(recipients):
            drop_reason = "FailUsers:" + ",".join(failed)
            return SendResult(
                outcome=Outcome.DROPPED,
                error_info=message,
                explanation=drop_explanation(drop_reason),
                drop_reason=drop_reason,
                **common,
            )
        info = message
        if failed:
            info = f"{message}; not delivered to {', '.join(failed)}"
        return SendResult(
            outcome=Outcome.OK, error_info=info, explanation=gettext("Sent."), **common
        )
    classified = classify(code)
    is_retryable, retry_after = retry_policy("code", classified)
    return SendResult(
        outcome=Outcome.FAILED,
        error_info=message,
        explanation=str(classified.explanation),
        retryable=is_retryable,
        retry_after=retry_after,
        **common,
    )


# --- credential check (a harmless call that proves the secret and identifier) -------
# A custom command to a room that cannot exist: the gateway checks the signature
# first, so "the room does not exist" means the AppId and ServerSecret were accepted.
CHECK_KIND = "command"
CHECK_ACCEPTED = frozenset({104, 5024, 50001})
# Gateway codes about the AppId, the signature and the environment (PROVIDERS.md 6).
CHECK_REFUSED = frozenset(
    {100000001, 100000004, 100000005, 100000010, 100000016, 100000017}
)


def check_fields(room_id: str, identifier: str) -> dict[str, str]:
    return {
        "room_id": room_id,
        "from_user": identifier,
        "content": "LiveAdmin credential check",
    }
