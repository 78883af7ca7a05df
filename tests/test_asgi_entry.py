"""webhooks/asgi.py, the entry point for ASGI servers (the Procfile runs webhooks/rsgi.py):
the webhook is answered from the hot path with its body read up to the cap, and every
other path goes to Django."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.db import connections

from tests.factories import make_app
from tests.webhook_support import BEFORE, run_async, text_body
from webhooks import services
from webhooks.asgi import application
from webhooks.rules_cache import rules

pytestmark = pytest.mark.django_db(transaction=True)


def call(
    method: str, path: str, chunks: list[bytes], query: str = "", headers=()
) -> tuple[int, dict[str, str], bytes]:
    async def run() -> tuple[int, dict[str, str], bytes]:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"testserver"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        app = ApplicationCommunicator(application, scope)
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await app.send_input(
                {"type": "http.request", "body": chunk, "more_body": more}
            )
        start = await app.receive_output(10)
        body = b""
        while True:
            message = await app.receive_output(10)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await app.wait(10)
        # Django ran the view in asgiref's thread: close that thread's connection.
        await sync_to_async(connections.close_all)()
        return (
            start["status"],
            {k.decode(): v.decode() for k, v in start["headers"]},
            body,
        )

    return run_async(run())


@pytest.fixture
def app_id():
    app = make_app(name="asgi")
    services.add_entry(services.create_list("Words", app=app), term="casino")
    rules.reset()
    rules.get()  # built here: the calls are then answered on the event loop
    return app.app_id


def test_the_webhook_reads_a_chunked_body_and_answers(app_id):
    payload = json.dumps(text_body("big CASINO night")).encode()
    query = f"SdkAppid={app_id}&CallbackCommand={BEFORE}"
    status, headers, body = call(
        "POST", "/webhooks/tencent", [payload[:10], payload[10:]], query
    )
    assert (status, headers["content-type"]) == (200, "application/json")
    assert json.loads(body)["ErrorCode"] == 1


def test_the_webhook_refuses_a_body_over_the_cap_and_other_methods(app_id, settings):
    settings.WEBHOOK_MAX_BODY = 1000
    query = f"SdkAppid={app_id}&CallbackCommand={BEFORE}"
    status, _, body = call("POST", "/webhooks/tencent", [b"x" * 600] * 3, query)
    assert (status, json.loads(body)) == (413, {"error": "body over 1 MB"})
    status, headers, _ = call("GET", "/webhooks/tencent", [b""], query)
    assert (status, headers["allow"]) == (405, "POST")


def test_every_other_path_goes_to_django(app_id):
    status, headers, body = call("GET", "/accounts/login/", [b""])
    assert status == 200 and 'name="password"' in body.decode()
