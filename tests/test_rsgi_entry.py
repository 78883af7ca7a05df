"""webhooks/rsgi.py in process (tests/test_production_server.py runs it under granian):
the first call builds the rules in a thread and then freezes what the process holds."""

from __future__ import annotations

import asyncio
import gc
import json

import pytest
from django.db import connections

from tests.factories import make_app
from tests.webhook_support import BEFORE, run_async, text_body
from webhooks import heap, hotpath, rsgi, services
from webhooks.rules_cache import rules

pytestmark = pytest.mark.django_db(transaction=True)


class Headers(dict):
    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return list(super().items())


class Scope:
    proto = "http"
    method = "POST"
    path = hotpath.WEBHOOK_PATH

    def __init__(self, query: str, headers: dict[str, str]) -> None:
        self.query_string = query
        self.headers = Headers(headers)


class Proto:
    """The two calls of granian's HTTP protocol object the webhook uses."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.answer: tuple[int, list[tuple[str, str]], bytes] | None = None

    async def __call__(self) -> bytes:
        return self.body

    def response_bytes(self, status: int, headers: list, body: bytes) -> None:
        self.answer = (status, headers, body)


def test_the_first_call_builds_the_rules_aside_then_freezes_the_heap(monkeypatch):
    app = make_app(name="rsgi")
    services.add_entry(services.create_list("Words", app=app), term="casino")
    rules.reset()
    monkeypatch.setattr(heap, "_frozen", False)
    body = json.dumps(text_body("CASINO tonight")).encode()
    proto = Proto(body)
    scope = Scope(
        f"SdkAppid={app.app_id}&CallbackCommand={BEFORE}",
        {"content-length": str(len(body))},
    )

    async def call() -> None:
        await rsgi.webhook(scope, proto)
        # The rules were read in the loop's worker thread: close its connection there.
        await asyncio.to_thread(connections.close_all)

    try:
        run_async(call())
        assert proto.answer is not None
        status, headers, answer = proto.answer
        assert (status, json.loads(answer)["ErrorCode"]) == (200, 1)
        assert heap._frozen and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_a_bad_content_length_is_refused_before_the_body_is_read():
    proto = Proto(b"")
    run_async(rsgi.webhook(Scope("", {"content-length": "12x"}), proto))
    assert proto.answer is not None
    assert proto.answer[0] == 400
    assert json.loads(proto.answer[2]) == {"error": "bad Content-Length"}
