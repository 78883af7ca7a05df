"""The production entry point (the Procfile's web line): an RSGI application for granian.

``POST /webhooks/tencent`` is answered by webhooks/hotpath.py without Django's request
cycle; every other path goes to Django's ASGI handler (the dashboard), through
liveadmin/rsgi_adapter.py and with its access log (liveadmin/access_log.py).

granian reads each request body asynchronously, so a client that sends its upload
slowly costs a coroutine, never a worker thread. The webhook's body is read whole before
it is answered: in one await when Content-Length says how long it is (at most
WEBHOOK_MAX_BODY), else chunk by chunk up to that cap and no further.

The answer is computed on the event loop when the rules are in memory (no I/O: the
version check and rebuilds run in a background thread); the first build of a process,
which reads the database, runs in a thread. webhooks/asgi.py is the same entry point as
an ASGI application, for ASGI servers (bench/webhook_load.py measures uvicorn with it).
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveadmin.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

from liveadmin import access_log, rsgi_adapter  # noqa: E402
from webhooks import heap, hotpath  # noqa: E402
from webhooks.hot_settings import hot  # noqa: E402
from webhooks.request_body import (  # noqa: E402
    BodyRefused,
    TooLarge,
    declared_length,
    parse_query,
)

_JSON = [("content-type", "application/json")]

dashboard = rsgi_adapter.serve_asgi(access_log.logged(get_asgi_application()))


def _reply(proto: Any, reply: hotpath.Reply, extra: list | None = None) -> None:
    proto.response_bytes(reply.status, _JSON + extra if extra else _JSON, reply.json())


async def _read_capped(proto: Any, limit: int) -> bytes:
    """The whole body of a request without Content-Length. Raises TooLarge past
    ``limit`` bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in proto:
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def webhook(scope: Any, proto: Any) -> None:
    if scope.method != "POST":
        _reply(proto, hotpath.wrong_method(), [("allow", "POST")])
        return
    max_body = hot().max_body
    length = scope.headers.get("content-length")
    try:
        if length is not None:
            declared_length(length, max_body)
            body = await proto()  # its length is known: one await
        else:
            body = await _read_capped(proto, max_body)
    except BodyRefused as exc:
        _reply(proto, hotpath.body_refused(exc))
        return
    _reply(proto, await hotpath.answer_on_loop(parse_query(scope.query_string), body))
    heap.freeze_once()


async def application(scope: Any, proto: Any) -> None:
    if scope.proto != "http":
        return  # no WebSocket (the Procfile line runs with --no-ws)
    if scope.path == hotpath.WEBHOOK_PATH:
        await webhook(scope, proto)
    else:
        await dashboard(scope, proto)
