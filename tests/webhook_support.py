"""Helpers for calling the before-send webhook the way the provider does."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.test import Client
from django.urls import reverse

from messaging.models import ProviderApp

T = TypeVar("T")

BEFORE = "Group.CallbackBeforeSendMsg"
AFTER = "Group.CallbackAfterSendMsg"
OK = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}


def sign(token: str, request_time: int | str) -> str:
    return hashlib.sha256(f"{token}{request_time}".encode()).hexdigest()


def webhook_url(
    app: ProviderApp | int,
    *,
    command: str = BEFORE,
    token: str | None = None,
    request_time: int | None = None,
    **extra: str,
) -> str:
    app_id = app if isinstance(app, int) else app.app_id
    query: dict[str, Any] = {
        "SdkAppid": app_id,
        "CallbackCommand": command,
        "contenttype": "json",
        "ClientIP": "127.0.0.1",
        "OptPlatform": "RESTAPI",
    }
    if token is not None:
        request_time = int(time.time()) if request_time is None else request_time
        query["Sign"] = sign(token, request_time)
        query["RequestTime"] = request_time
    query.update(extra)
    return f"{reverse('webhooks:tencent')}?{urlencode(query)}"


def text_body(
    text: str = "hello",
    *,
    sender: str = "viewer-1",
    room: str = "room-1",
    cloud_custom_data: str | None = None,
    elements: list[dict] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "CallbackCommand": BEFORE,
        "GroupId": room,
        "Type": "Live",
        "From_Account": sender,
        "Operator_Account": sender,
        "Random": 123456,
        "MsgId": "144115233406643804-1727580296-4026038328",
        "MsgBody": elements
        if elements is not None
        else [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}],
        "EventTime": 1670574414123,
    }
    if cloud_custom_data is not None:
        body["CloudCustomData"] = cloud_custom_data
    return body


def post_webhook(client: Client, url: str, body: Any) -> Any:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a new event loop in a thread of its own: the test
    process may already run a loop in this thread (Playwright's, after browser tests)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
