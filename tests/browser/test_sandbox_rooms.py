"""The sandbox rooms page in real Chromium: a message sent to the sandbox API shows
up in the open room without a reload (htmx poll)."""

from __future__ import annotations

import httpx
import pytest

from liveadmin.roles import Role
from tests.browser.conftest import login
from tests.factories import PASSWORD, make_app, make_sandbox_app, make_user
from tests.sandbox_support import WebhookReceiver, tencent_url

pytestmark = pytest.mark.browser


def test_it_shows_a_new_message_in_the_open_room(page, live_server):
    # Administrators mute members (managers only read their own sends' messages).
    make_user("sbadmin", role=Role.ADMIN)
    app = make_app(name="Main app", identifier="administrator")
    with WebhookReceiver() as hook:
        sandbox = make_sandbox_app(app, rooms=("demo-room",), callback_url=hook.url)
        login(page, "sbadmin", PASSWORD)
        page.get_by_role("navigation", name="Main").get_by_role(
            "link", name="Sandbox rooms"
        ).click()
        page.get_by_role("link", name="demo-room").click()
        page.get_by_text("No message delivered to this room yet.").wait_for()

        url = tencent_url(live_server.url, "live_engine_http_srv", "send_text_msg", app)
        body = {
            "RoomId": "demo-room",
            "Sender_Account": "host1",
            "TextContent": "hello audience",
        }
        assert httpx.post(url, json=body, timeout=10).json()["ErrorCode"] == 0

        row = page.locator("#msg-1")
        row.wait_for(timeout=8000)
        assert "hello audience" in row.inner_text()
        assert "host1" in row.inner_text()

        # Mute from the page: the next send by host1 is refused with 100601.
        page.get_by_label("User ID").fill("host1")
        page.get_by_label("Mute for (seconds)").fill("600")
        page.get_by_role("button", name="Mute / unmute").click()
        page.locator("#muted-members").get_by_text("host1").wait_for()
        assert httpx.post(url, json=body, timeout=10).json()["ErrorCode"] == 100601
        assert sandbox.rooms.get().messages.count() == 1
