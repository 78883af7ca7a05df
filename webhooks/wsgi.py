"""Optional leaner entry point: the webhook served straight from the hot path,
everything else handed to Django.

    gunicorn webhooks.wsgi:application -w 2

POST /webhooks/tencent skips Django's request cycle (middleware, URL resolving,
HttpRequest); the answer is the same ``hotpath.answer`` the Django view returns.
For deployments where the webhook needs more than Django gives per core; bench/webhook_load.py measures both.
"""

from __future__ import annotations

import os
from http import HTTPStatus
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveadmin.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

from webhooks import heap, hotpath  # noqa: E402
from webhooks.hot_settings import hot  # noqa: E402
from webhooks.request_body import BodyRefused, parse_query, read_body  # noqa: E402

django_application = get_wsgi_application()


def _reply(
    start_response: Any, reply: hotpath.Reply, extra: list | None = None
) -> list[bytes]:
    body = reply.json()
    status = f"{reply.status} {HTTPStatus(reply.status).phrase}"
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *(extra or []),
        ],
    )
    return [body]


def application(environ: dict, start_response: Any) -> Any:
    if environ.get("PATH_INFO") != hotpath.WEBHOOK_PATH:
        return django_application(environ, start_response)
    if environ.get("REQUEST_METHOD") != "POST":
        return _reply(start_response, hotpath.wrong_method(), [("Allow", "POST")])
    try:
        body = read_body(environ, hot().max_body)
    except BodyRefused as exc:
        return _reply(start_response, hotpath.body_refused(exc))
    query = parse_query(environ.get("QUERY_STRING", ""))
    reply = _reply(start_response, hotpath.answer(query, body))
    heap.freeze_once()
    return reply
