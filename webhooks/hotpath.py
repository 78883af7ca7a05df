"""The before-send webhook's hot path: parse, look up the app, match, answer.

No request object and no per-request database query: provider apps and their
compiled rule sets live in process memory (webhooks/rules_cache.py) and are rebuilt
when the rules version moves (webhooks/version.py). ``answer(query, body)`` takes the
query parameters and raw body and returns a ``Reply`` (status + JSON payload), so
the same function can be served by Django (views_webhook.py) or a leaner callable.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson
from django.conf import settings

from webhooks import enforcement
from webhooks.hot_settings import hot
from webhooks.matching import DOCUMENTED_STRINGS, iter_texts
from webhooks.recent import recent
from webhooks.recorder import recorder
from webhooks.request_body import BodyRefused, TooLarge
from webhooks.rules_cache import AppRules, Snapshot, rules

logger = logging.getLogger(__name__)

# Where every entry point (webhooks/rsgi.py, asgi.py, wsgi.py, urls.py) serves it.
WEBHOOK_PATH = "/webhooks/tencent"
BEFORE_SEND = "Group.CallbackBeforeSendMsg"
OK = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}


class Reply(NamedTuple):
    """What an entry point sends back (a tuple: built once per call, three times cheaper
    than a frozen dataclass)."""

    status: int
    payload: dict[str, Any]
    reason: str = ""  # why a call was refused (counted), or "" when answered

    def json(self) -> bytes:
        try:
            return orjson.dumps(self.payload)
        except orjson.JSONEncodeError:
            # A lone surrogate echoed back in a masked text has no UTF-8 form: ASCII
            # escapes keep it valid JSON.
            return json.dumps(self.payload).encode()


class InternalFailure(Exception):
    """Something on our side broke; the app's fail policy answers."""


def error(msg: str, status: int, reason: str) -> Reply:
    """Every refusal of a webhook call goes through here, and is counted."""
    recorder.rejection(reason)
    return Reply(status, {"error": msg}, reason)


def wrong_method() -> Reply:
    """Anything but POST (the entry points add ``Allow: POST``)."""
    return error("use POST", 405, "bad_method")


def body_refused(exc: BodyRefused) -> Reply:
    """A body over WEBHOOK_MAX_BODY or a Content-Length that is not a number."""
    if isinstance(exc, TooLarge):
        return error("body over 1 MB", 413, "too_large")
    return error("bad Content-Length", 400, "bad_length")


# --- request checks -------------------------------------------------------------


def _is_number(value: str) -> bool:
    """ASCII digits only, at most 20 of them: str.isdigit() alone accepts "²" and other
    digits int() refuses, and int() refuses more than 4,300 digits."""
    return 0 < len(value) <= 20 and value.isascii() and value.isdigit()


def valid_sign(token: str, request_time: str, sign: str) -> bool:
    """Sign = sha256hex(token + RequestTime) (docs/providers.md, "Before-send webhook").
    The hex case is UNCONFIRMED there, so compare lower-cased, in constant time."""
    expected = hashlib.sha256((token + request_time).encode()).hexdigest()
    return hmac.compare_digest(expected.encode(), sign.strip().lower().encode())


def _check_signature(
    app: AppRules, query: Mapping[str, str], now: float
) -> Reply | None:
    sign, request_time = query.get("Sign", ""), query.get("RequestTime", "")
    if not sign or not request_time:
        return error("Sign and RequestTime are required for this app", 401, "no_sign")
    if not _is_number(request_time):
        return error("RequestTime must be Unix seconds", 400, "bad_request_time")
    if not valid_sign(app.token, request_time, sign):
        return error("wrong Sign", 401, "bad_sign")
    if abs(now - int(request_time)) > settings.WEBHOOK_SIGN_MAX_AGE:
        return error("RequestTime is too old or in the future", 401, "stale_sign")
    return None


def _str_field(
    body: dict, name: str, *, required: bool = True
) -> tuple[str, Reply | None]:
    value = body.get(name)
    if value is None and not required:
        return "", None
    if not isinstance(value, str):
        what = "is missing" if value is None else "must be a string"
        return "", error(f"{name} {what}", 400, "bad_field")
    return value, None


def parse_before_send(body: dict) -> tuple[dict[str, Any], Reply | None]:
    """The fields of a before-send call the decision needs, type-checked."""
    out: dict[str, Any] = {}
    for name, required in (
        ("GroupId", True),
        ("From_Account", True),
        ("CloudCustomData", False),
    ):
        out[name], err = _str_field(body, name, required=required)
        if err:
            return out, err
    msg_body = body.get("MsgBody")
    if not isinstance(msg_body, list):
        what = "is missing" if msg_body is None else "must be an array"
        return out, error(f"MsgBody {what}", 400, "bad_field")
    for i, element in enumerate(msg_body):
        if (
            not isinstance(element, dict)
            or not isinstance(element.get("MsgType"), str)
            or not isinstance(element.get("MsgContent"), dict)
        ):
            return out, error(
                f"MsgBody[{i}] must be an object with MsgType (string) and MsgContent (object)",
                400,
                "bad_field",
            )
        content = element["MsgContent"]
        for key in DOCUMENTED_STRINGS.get(element["MsgType"].lower(), ()):
            if key in content and not isinstance(content[key], str):
                return out, error(
                    f"MsgBody[{i}].MsgContent.{key} must be a string", 400, "bad_field"
                )
    random = body.get("Random")
    if random is not None and (type(random) is not int or not 0 <= random < 2**32):
        return out, error("Random must be a 32-bit unsigned integer", 400, "bad_field")
    out["MsgBody"] = msg_body
    if "CloudCustomData" not in body:
        out["CloudCustomData"] = None
    return out, None


# --- the decision ---------------------------------------------------------------


def fail_policy(app: AppRules) -> dict[str, Any]:
    if app.fail_closed:
        return {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 1}
    return dict(OK)


def message_text(texts: list[tuple[str, str]]) -> str:
    """The text a moderator reads in the decision log and a dry run re-reads: every
    text the matcher read (``list(iter_texts(...))``), in order."""
    return " | ".join(text for _, text in texts)


def decide(
    app: AppRules,
    fields: dict[str, Any],
    *,
    now: float | None = None,
    texts: list[tuple[str, str]] | None = None,
):
    """(Verdict, response) for a parsed before-send call. Raises InternalFailure."""
    if app.ruleset is None:
        raise InternalFailure(app.build_error or "no rules")
    try:
        verdict = app.ruleset.check(
            from_account=fields["From_Account"],
            msg_body=fields["MsgBody"],
            cloud_custom_data=fields["CloudCustomData"],
            now=now,
            texts=texts,
        )
    except Exception as exc:
        raise InternalFailure(f"{type(exc).__name__}: {exc}") from exc
    return verdict, verdict.response()


def answer(query: Mapping[str, str], body: bytes, *, now: float | None = None) -> Reply:
    """Answer one webhook call. Never raises for bad input; an internal failure
    after the app is known answers with the app's fail policy."""
    started = time.perf_counter()
    now = time.time() if now is None else now
    if len(body) > hot().max_body:
        return body_refused(TooLarge())
    raw_appid = query.get("SdkAppid", "")
    if not _is_number(raw_appid):
        what = "is missing" if not raw_appid else "must be a number"
        return error(f"SdkAppid {what}", 400, "bad_sdkappid")
    command = query.get("CallbackCommand", "")
    if not command:
        return error("CallbackCommand is missing", 400, "no_command")
    try:
        snapshot = rules.get()
    except Exception:
        logger.exception("webhook rules unavailable")
        # No app is known yet, so no fail policy applies; a non-200 makes the
        # provider apply the console's failure policy (docs/providers.md,
        # "Before-send webhook").
        return Reply(503, {"error": "rules unavailable"}, "unavailable")
    app = snapshot.by_sdkappid.get(int(raw_appid))
    if app is None or not app.enabled:
        return error("unknown or disabled SdkAppid", 403, "unknown_app")
    try:
        return _answer_for_app(snapshot, app, command, query, body, now, started)
    except InternalFailure as exc:
        reason: object = exc
    except Exception as exc:  # a bug of ours must not become a 500 either
        logger.exception("webhook: unexpected error for app %s", app.name)
        reason = f"{type(exc).__name__}: {exc}"
    logger.error(
        "webhook internal failure for app %s (%s): %s",
        app.name,
        "fail-closed" if app.fail_closed else "fail-open",
        reason,
    )
    recorder.rejection("internal_failure")
    return Reply(200, fail_policy(app), "")


async def answer_on_loop(query: Mapping[str, str], body: bytes) -> Reply:
    """``answer`` for an asynchronous entry point: on the event loop when the rules are
    in memory (no I/O), else in a thread (the first build of a process reads the
    database)."""
    if rules.ready():
        return answer(query, body)
    return await asyncio.to_thread(answer, query, body)


def _answer_for_app(
    snapshot: Snapshot,
    app: AppRules,
    command: str,
    query: Mapping[str, str],
    body: bytes,
    now: float,
    started: float,
) -> Reply:
    if app.token:
        refused = _check_signature(app, query, now)
        if refused:
            return refused
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        # What orjson refuses and json reads: lone surrogates in escapes, integers past
        # 64 bits, NaN, UTF-16, a byte-order mark. Read the same as before orjson.
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return error("body is not JSON", 400, "bad_json")
    if not isinstance(payload, dict):
        return error("body must be a JSON object", 400, "bad_json")
    in_body = payload.get("CallbackCommand")
    if in_body is not None and in_body != command:
        return error(
            "CallbackCommand differs between URL and body", 400, "command_mismatch"
        )
    if command != BEFORE_SEND:
        # After-send and every other callback: acknowledged, nothing to decide.
        return Reply(200, dict(OK))

    fields, refused = parse_before_send(payload)
    if refused:
        return refused
    sender, room = fields["From_Account"], fields["GroupId"]
    # Walked once: the matcher reads them, the decision log and the dry-run store keep them.
    texts = list(iter_texts(fields["MsgBody"], fields["CloudCustomData"]))
    mod = snapshot.moderation_for(app.pk)
    # A muted sender is answered like a blocked user, before any matching.
    sanction = enforcement.muted(mod, sender, room, now)
    if sanction is not None:
        action, response, entry_ids = "forbid", enforcement.MUTED_RESPONSE, []
        error_code, review = 1, False
    else:
        verdict, response = decide(app, fields, texts=texts)
        action, error_code = verdict.action, verdict.error_code
        entry_ids = sorted({hit.rule_id for hit in verdict.hits})
        sanction, review = enforcement.after_verdict(
            mod, sender, room, action, entry_ids, now
        )
        if sanction is not None:  # escalation: more than N hits in the window
            action, response, error_code = "forbid", enforcement.MUTED_RESPONSE, 1
        elif review and action == "allow":
            action = "flag"  # delivered as sent, and queued
    latency_us = int((time.perf_counter() - started) * 1_000_000)
    logged = action != "allow"
    text = message_text(texts)
    recorder.decision(
        app_pk=app.pk,
        action=action,
        entry_ids=entry_ids,
        room_id=room,
        sender=sender,
        error_code=error_code,
        text=text if logged else "",
        original={
            "MsgBody": fields["MsgBody"],
            "CloudCustomData": fields["CloudCustomData"],
        }
        if logged
        else None,
        response=response,
        extra={
            "latency_us": latency_us,
            "review": "open" if review else "",
            "sanction_id": sanction.id if sanction is not None else None,
            "own_send": payload.get("Operator_Account") == mod.identifier,
        }
        if logged
        else None,
    )
    recent.note(app.pk, room, sender, text, action, latency_us)
    return Reply(200, response)
