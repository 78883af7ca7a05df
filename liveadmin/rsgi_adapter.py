"""An ASGI application (Django's handler) served through granian's RSGI interface.

The production entry point (webhooks/rsgi.py) is an RSGI application: granian hands an
RSGI request to Python with fewer thread handoffs than an ASGI one (the webhook under
the same load: about 150 against 185 µs of the worker's CPU per request, measured with
bench/webhook_load.py's load). The dashboard stays Django's ASGI handler; this module
translates between the two, for plain HTTP (the Procfile line runs with ``--no-ws``):

- the RSGI scope becomes an ASGI ``http`` scope (headers as sent, repeated ones
  included; the path granian has already decoded);
- ``receive`` hands the body over in the chunks granian reads it in, asynchronously (a
  slow upload costs a coroutine, never a thread), then waits for the client to go;
- ``send`` answers a whole response with ``response_bytes``, and one sent in several
  parts (a CSV export) with ``response_stream``.

RSGI 1.2+ as granian implements it: https://github.com/emmett-framework/granian (docs/spec/RSGI.md).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from granian.rsgi import ProtocolClosed

from liveadmin import arrival

ASGIApp = Callable[
    [
        dict[str, Any],
        Callable[[], Awaitable[dict[str, Any]]],
        Callable[[Mapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]
# RSGI says "1", "1.1" or "2"; ASGI "1.0", "1.1" or "2".
_HTTP_VERSION = {"1": "1.0", "1.0": "1.0", "1.1": "1.1", "2": "2", "2.0": "2"}


def _address(value: str) -> tuple[str, int] | None:
    """("host", port) from RSGI's "host:port" (an IPv6 host comes in brackets)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def asgi_scope(scope: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": _HTTP_VERSION.get(scope.http_version, "1.1"),
        "method": scope.method,
        "scheme": scope.scheme,
        "path": scope.path,
        "query_string": scope.query_string.encode("utf-8"),
        "root_path": "",
        "headers": [
            (name.encode("latin-1"), value.encode("utf-8"))
            for name, value in scope.headers.items()
        ],
        "client": _address(scope.client),
        "server": _address(scope.server),
        "state": {},
        arrival.SCOPE_KEY: time.time(),
    }


def serve_asgi(app: ASGIApp) -> Callable[[Any, Any], Awaitable[None]]:
    """An RSGI callable that serves ``app`` (an ASGI application) for HTTP requests."""

    async def application(scope: Any, proto: Any) -> None:
        chunks = proto.__aiter__()
        body_done = False
        status = 500
        headers: list[tuple[str, str]] = []
        stream: Any = None
        answered = closed = False

        async def receive() -> dict[str, Any]:
            nonlocal body_done
            if not body_done:
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    body_done = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                return {"type": "http.request", "body": chunk, "more_body": True}
            await proto.client_disconnect()
            return {"type": "http.disconnect"}

        async def send(message: Mapping[str, Any]) -> None:
            nonlocal status, headers, stream, answered, closed
            if closed or answered:
                return
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                headers = [
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in message.get("headers", ())
                ]
            elif kind == "http.response.body":
                body = message.get("body", b"")
                more = message.get("more_body", False)
                try:
                    if stream is None and not more:
                        proto.response_bytes(status, headers, body)
                        answered = True
                        return
                    if stream is None:
                        stream = proto.response_stream(status, headers)
                    if body:
                        await stream.send_bytes(body)
                except ProtocolClosed:
                    closed = True  # the client went away: the rest is dropped
                if not more:
                    answered = True

        await app(asgi_scope(scope), receive, send)

    return application
