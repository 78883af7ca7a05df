"""The baseline of bench/webhook_load.py: a callable with no Django that only parses the
JSON body and answers JSON, as a WSGI, an ASGI and an RSGI (granian) application."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

ANSWER = b'{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))]


def wsgi(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    json.loads(environ["wsgi.input"].read(length))
    start_response("200 OK", HEADERS)
    return [ANSWER]


async def asgi(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    json.loads(b"".join(chunks))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(k.lower().encode(), v.encode()) for k, v in HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": ANSWER})


async def rsgi(scope: Any, proto: Any) -> None:
    json.loads(await proto())
    proto.response_bytes(200, HEADERS, ANSWER)
