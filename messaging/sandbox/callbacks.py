"""The sandbox's calls to the app's webhook: Group.CallbackBeforeSendMsg before a
room message is delivered, Group.CallbackAfterSendMsg after (docs/providers.md,
"Before-send webhook").

The sandbox stands in for the provider here, so it has its own HTTP client rather
than the dashboard's provider client.
"""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from django.conf import settings

from messaging.sandbox.models import SandboxApp
from webhooks.vocabulary import FORBID_CODES

logger = logging.getLogger(__name__)

BEFORE_SEND = "Group.CallbackBeforeSendMsg"
AFTER_SEND = "Group.CallbackAfterSendMsg"
# The provider's fixed callback timeout (not adjustable per 269/1522).
DEFAULT_TIMEOUT = 2.0
# Answer codes with which the app forbids a message and names the code itself.
OWN_CODES = FORBID_CODES

_client = httpx.Client(
    timeout=httpx.Timeout(DEFAULT_TIMEOUT),
    limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
    follow_redirects=False,
)
# After-send callbacks are fire-and-forget: their answer is ignored, so they must
# not hold up the answer to the sender.
_after_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-after")


def callback_timeout() -> float:
    return float(settings.SANDBOX_CALLBACK_TIMEOUT)


@dataclass(frozen=True)
class BeforeSendAnswer:
    """What the sandbox does with the message after the before-send callback.

    ``action``: "deliver", "discard" (success to the sender, nothing delivered) or
    "reject" (``error_code``/``error_info`` to the sender). ``failed`` is True when
    the callback itself failed (timeout, non-200, not JSON) and the app's failure
    policy decided.
    """

    action: str
    msg_body: list[dict[str, Any]]
    cloud_custom_data: str | None
    modified: bool = False
    error_code: int = 0
    error_info: str = ""
    failed: bool = False


def callback_url(app: SandboxApp, site_url: str, command: str, client_ip: str) -> str:
    """The app's webhook URL with the provider's query string appended."""
    base = app.callback_url or f"{site_url.rstrip('/')}/webhooks/tencent"
    query = {
        "SdkAppid": str(app.app_id),
        "CallbackCommand": command,
        "contenttype": "json",
        "ClientIP": client_ip,
        "OptPlatform": "RESTAPI",
    }
    if app.callback_token:
        request_time = str(int(time.time()))
        query["Sign"] = hashlib.sha256(
            (app.callback_token + request_time).encode()
        ).hexdigest()
        query["RequestTime"] = request_time
    return f"{base}{'&' if '?' in base else '?'}{urlencode(query)}"


def _valid_body(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(e, dict)
            and isinstance(e.get("MsgType"), str)
            and isinstance(e.get("MsgContent"), dict)
            for e in value
        )
    )


def before_send(
    app: SandboxApp,
    *,
    site_url: str,
    client_ip: str,
    payload: dict[str, Any],
) -> BeforeSendAnswer:
    """POST Group.CallbackBeforeSendMsg and turn the answer into a decision."""
    msg_body = payload["MsgBody"]
    ccd = payload.get("CloudCustomData")
    url = callback_url(app, site_url, BEFORE_SEND, client_ip)
    try:
        response = _client.post(url, json=payload, timeout=callback_timeout())
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        answer = response.json()
        if not isinstance(answer, dict):
            raise ValueError("answer is not a JSON object")
        code = answer.get("ErrorCode")
        if not isinstance(code, int) or isinstance(code, bool):
            raise ValueError("answer has no integer ErrorCode")
    except (httpx.HTTPError, ValueError) as exc:
        # Never log the URL: it carries the Sign.
        logger.warning(
            "sandbox: before-send callback of app %s failed: %s", app.app_id, exc
        )
        if app.failure_policy == "reject":
            return BeforeSendAnswer(
                "reject",
                msg_body,
                ccd,
                error_code=80003,
                error_info="before-send callback failed or timed out; "
                "the app's policy is not to deliver",
                failed=True,
            )
        return BeforeSendAnswer("deliver", msg_body, ccd, failed=True)

    raw_info = answer.get("ErrorInfo")
    info = raw_info if isinstance(raw_info, str) else ""
    if code == 0:
        new_body, new_ccd, modified = msg_body, ccd, False
        if "MsgBody" in answer:
            if not _valid_body(answer["MsgBody"]):
                logger.warning(
                    "sandbox: before-send callback of app %s returned an invalid MsgBody; "
                    "delivering the original",
                    app.app_id,
                )
            else:
                new_body, modified = answer["MsgBody"], True
        if isinstance(answer.get("CloudCustomData"), str):
            new_ccd, modified = answer["CloudCustomData"], True
        return BeforeSendAnswer("deliver", new_body, new_ccd, modified=modified)
    if code == 1:
        return BeforeSendAnswer(
            "reject",
            msg_body,
            ccd,
            error_code=10016,
            error_info="message rejected by the app's before-send callback",
        )
    if code == 2:
        return BeforeSendAnswer("discard", msg_body, ccd)
    if code in OWN_CODES:
        return BeforeSendAnswer(
            "reject", msg_body, ccd, error_code=code, error_info=info
        )
    # Other values are not documented (docs/providers.md, UNCONFIRMED): treat them like a failed callback.
    logger.warning(
        "sandbox: before-send callback of app %s answered undocumented ErrorCode %s",
        app.app_id,
        code,
    )
    if app.failure_policy == "reject":
        return BeforeSendAnswer(
            "reject",
            msg_body,
            ccd,
            error_code=80003,
            error_info="before-send callback answered an undocumented ErrorCode",
            failed=True,
        )
    return BeforeSendAnswer("deliver", msg_body, ccd, failed=True)


def _post_after(url: str, payload: dict[str, Any], app_id: int) -> None:
    try:
        _client.post(url, json=payload, timeout=callback_timeout())
    except httpx.HTTPError as exc:
        logger.info("sandbox: after-send callback of app %s failed: %s", app_id, exc)


def after_send(
    app: SandboxApp, *, site_url: str, client_ip: str, payload: dict[str, Any]
) -> None:
    """POST Group.CallbackAfterSendMsg in the background; the answer is ignored."""
    url = callback_url(app, site_url, AFTER_SEND, client_ip)
    _after_pool.submit(_post_after, url, payload, app.app_id)
