"""The send page in Chromium: a manager sends to the sandbox and finds the send in
the log; the byte counter; the htmx app switch; a template with a variable."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from liveadmin.roles import Role
from messaging.models import MessageTemplate, SendRecord
from messaging.sandbox.models import SandboxMessage
from tests.browser.conftest import follow_nav, login
from tests.factories import PASSWORD, make_app, make_sandbox_app, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def manager_page(page):
    user = make_user("browser-manager", role=Role.MANAGER)
    login(page, user.username, PASSWORD)
    page.user = user
    return page


def pick_app(page, app) -> None:
    select = page.get_by_label("App", exact=True)
    select.wait_for()
    # htmx binds its change listener once the page has loaded; picking earlier (right
    # after a click on a link) would change the select with nothing listening.
    page.wait_for_load_state("load")
    select.select_option(str(app.pk))


def test_it_sends_a_text_message_to_the_sandbox_and_finds_it_in_the_log(
    manager_page, live_server
):
    page = manager_page
    app = make_app(name="Sandbox app", base_url=live_server.url + "/sandbox")
    make_sandbox_app(app, rooms=("room-1",))
    follow_nav(page, "Send")
    pick_app(page, app)
    page.get_by_role("textbox", name="Room IDs", exact=True).fill("room-1")
    page.get_by_role("textbox", name="Text", exact=True).fill("Welcome to the show!")
    page.get_by_role("button", name="Preview").click()

    body = page.locator("#preview-body")
    expect(body).to_contain_text('"TextContent": "Welcome to the show!"')
    expect(body).to_contain_text('"RoomId": "room-1"')
    assert not SendRecord.objects.exists()
    page.get_by_role("button", name="Confirm and send").click()

    result = page.locator("#send-result")
    expect(result.locator(".badge")).to_have_text("OK")
    record = SendRecord.objects.get()
    assert record.outcome == "ok" and record.user == page.user
    expect(result.locator("[data-fact=request-id]")).to_have_text(record.request_id)
    expect(result.locator("[data-fact=msg-seq]")).to_have_text(str(record.msg_seq))
    message = SandboxMessage.objects.get()
    assert message.msg_body[0]["MsgContent"]["Text"] == "Welcome to the show!"

    result.get_by_role("link", name="Open in the send log").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Send #{record.pk}")
    expect(page.get_by_text(record.request_id, exact=True)).to_be_visible()
    follow_nav(page, "My sends")
    expect(page.locator("table")).to_contain_text("room-1")


def test_it_counts_utf8_bytes_as_the_user_types(manager_page):
    page = manager_page
    tencent = make_app(name="Tencent app")
    zego = make_app(name="Zego app", provider="zego")
    page.goto(f"/send/?app={tencent.pk}")
    counter = page.locator("#id_text-counter")
    expect(counter).to_have_text("0 / 12,288 bytes")
    page.get_by_role("textbox", name="Text", exact=True).fill("héllo 👋")
    expect(counter).to_have_text("11 / 12,288 bytes")
    expect(counter).not_to_have_class(re.compile("over"))
    page.get_by_label("Extension info").fill('{"level": ')
    expect(page.locator("#id_extension_info-json")).to_contain_text("Not valid JSON")
    page.get_by_label("Extension info").fill('{"level": 3}')
    expect(page.locator("#id_extension_info-json")).to_have_text("Valid JSON")

    page.goto(f"/send/?app={zego.pk}")
    content = page.get_by_label("Message content")
    content.fill("é" * 512)
    counter = page.locator("#id_content-counter")
    expect(counter).to_have_text("1,024 / 1,024 bytes")
    content.press("End")
    content.type("x")
    expect(counter).to_have_text("1,025 / 1,024 bytes")
    expect(counter).to_have_class(re.compile("over"))


def test_it_swaps_kinds_and_fields_when_the_app_changes(manager_page):
    page = manager_page
    tencent = make_app(name="Tencent app")
    zego = make_app(name="Zego app", provider="zego")
    page.goto("/send/")
    # A full page load would drop this marker; an htmx swap keeps it.
    page.evaluate("window.notReloaded = true")
    pick_app(page, tencent)
    tabs = page.get_by_role("navigation", name="Kind of message").get_by_role("link")
    expect(tabs).to_have_text(
        ["Room text message", "Room custom message", "Broadcast to all live rooms"]
    )
    expect(page.get_by_role("textbox", name="Room IDs", exact=True)).to_be_visible()
    tabs.filter(has_text="Room custom message").click()
    expect(page.get_by_label("Business ID")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"app={tencent.pk}&kind=custom"))

    pick_app(page, zego)
    expect(tabs).to_have_text(["Custom command (ZEGO)"])
    expect(page.get_by_label("Message content")).to_be_visible()
    expect(page.get_by_label("To user IDs")).to_be_visible()
    expect(page.get_by_label("Business ID")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True


def test_it_fills_a_template_variable_into_the_preview(manager_page):
    page = manager_page
    app = make_app(name="Tencent app")
    MessageTemplate.objects.create(
        name="Welcome",
        app=app,
        kind="text",
        fields={"text": "Welcome to {host_name}'s room"},
    )
    page.goto(f"/send/?app={app.pk}")
    page.get_by_role("textbox", name="Room IDs", exact=True).fill(
        "room-1\nroom-2\nroom-1"
    )
    page.get_by_label("Start from a template").select_option(label="Welcome")
    expect(page.get_by_role("textbox", name="Text", exact=True)).to_have_value(
        "Welcome to {host_name}'s room"
    )
    expect(page.get_by_role("textbox", name="Room IDs", exact=True)).to_have_value(
        "room-1\nroom-2\nroom-1"
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#field-var_host_name .error")).to_have_text(
        "Enter a value for {host_name}."
    )
    page.get_by_label("{host_name}").fill("Ana")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-body")).to_contain_text(
        '"TextContent": "Welcome to Ana\'s room"'
    )
    expect(page.locator("#preview-rooms")).to_contain_text("2 rooms")
    expect(page.locator("#preview-rooms")).to_contain_text("removed 1 duplicate")
    expect(page.locator("#preview-estimate")).to_have_text(
        "2 rooms at 200/s: about 1 s"
    )
