"""The entry point for ASGI servers (uvicorn; the Procfile's web line serves
webhooks/rsgi.py, the same entry point for granian's RSGI interface).

``POST /webhooks/tencent`` is answered by webhooks/hotpath.py without Django's request
cycle; every other path goes to Django's ASGI handler (the dashboard). The server reads
each request body asynchronously, so a client that sends its upload slowly costs a
coroutine, never a worker thread: Django's handler buffers the whole body before it runs
a view in a thread, and the webhook reads its body (at most WEBHOOK_MAX_BODY, chunked or
not) before it answers.

The answer is computed on the event loop when the rules are in memory (about 40 µs of
CPU, no I/O: the version check and rebuilds run in a background thread); the first build
of a process, which reads the database, runs in a thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveadmin.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

from liveadmin import access_log, arrival  # noqa: E402
from webhooks import heap, hotpath  # noqa: E402
from webhooks.hot_settings import hot  # noqa: E402
from webhooks.request_body import (  # noqa: E402
    BodyRefused,
    TooLarge,
    declared_length,
    parse_query,
)

django_application = access_log.logged(get_asgi_application())
_JSON = [(b"content-type", b"application/json")]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


async def _reply(send: Send, reply: hotpath.Reply, extra: list | None = None) -> None:
    body = reply.json()
    await send(
        {
            "type": "http.response.start",
            "status": reply.status,
            "headers": [
                *_JSON,
                (b"content-length", str(len(body)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole body. Raises TooLarge past ``limit`` bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def webhook(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["method"] != "POST":
        await _reply(send, hotpath.wrong_method(), [(b"allow", b"POST")])
        return
    max_body = hot().max_body
    try:
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared_length(value.decode("latin-1"), max_body)
        body = await _read_body(receive, max_body)
    except BodyRefused as exc:
        await _reply(send, hotpath.body_refused(exc))
        return
    query = parse_query(scope["query_string"].decode("latin-1"))
    await _reply(send, await hotpath.answer_on_loop(query, body))
    heap.freeze_once()


async def application(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"] == hotpath.WEBHOOK_PATH:
        await webhook(scope, receive, send)
    else:
        scope[arrival.SCOPE_KEY] = time.time()
        await django_application(scope, receive, send)
