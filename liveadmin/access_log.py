"""The dashboard's access log, written by the entry points (webhooks/rsgi.py, asgi.py).

One line per request to the dashboard (every path but the before-send webhook), after
the response: client address, method, path without its query string (a sandbox call's
query holds a UserSig), HTTP version, status and milliseconds, in granian's access-log
format. Logger ``liveadmin.access``, INFO, whatever LOG_LEVEL says; ``ACCESS_LOG=0``
turns it off.

The webhook is left out: at 10,000 calls a second its lines would be the whole log,
and granian's own access log cost a fifth of the webhook's throughput (measured with
bench/webhook_load.py's load). Its calls are counted instead: decisions and their time
in /metrics and the overview, refusals per reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

logger = logging.getLogger("liveadmin.access")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def logged(app: ASGIApp) -> ASGIApp:
    """``app`` with an access-log line for each HTTP request it answers."""

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_and_note(message: Mapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_and_note)
        finally:
            client = scope.get("client") or ("-", 0)
            logger.info(
                '%s - "%s %s HTTP/%s" %d %.3f',
                client[0],
                scope["method"],
                scope["path"],
                scope.get("http_version", "1.1"),
                status,
                (time.perf_counter() - started) * 1000,
            )

    return application
