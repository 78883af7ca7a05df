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

import gc
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveadmin.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

from liveadmin import access_log, rsgi_adapter  # noqa: E402
from webhooks import hotpath  # noqa: E402
from webhooks.hot_settings import hot  # noqa: E402
from webhooks.request_body import (  # noqa: E402
    BodyRefused,
    TooLarge,
    declared_length,
    parse_query,
)
from webhooks.rules_cache import rules  # noqa: E402

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
    _freeze_once()


_frozen = False


def _freeze_once() -> None:
    """Once the process holds its first rules: collect, then move every object alive
    (Django, the modules, the rules) out of the collector's sight (``gc.freeze``).

    A full collection walked them all, about 35 ms with 21,100 rules, holding the GIL,
    whenever enough new objects had survived; under load that was the p99. With wrk
    -c16 on the Procfile line, three runs each: p99 11.2 / 20.8 / 15.5 ms before, 8.6 /
    10.1 / 7.2 ms after. Frozen objects are still freed when nothing refers to them
    (rules replaced by a rebuild are); only a reference cycle among them would stay."""
    global _frozen
    if not _frozen and rules.ready():
        _frozen = True
        gc.collect()
        gc.freeze()


async def application(scope: Any, proto: Any) -> None:
    if scope.proto != "http":
        return  # no WebSocket (the Procfile line runs with --no-ws)
    if scope.path == hotpath.WEBHOOK_PATH:
        await webhook(scope, proto)
    else:
        await dashboard(scope, proto)
