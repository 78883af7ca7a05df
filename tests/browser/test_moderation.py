from __future__ import annotations

import json
import time
import urllib.request

import pytest

from liveadmin.roles import Role
from tests.browser.conftest import follow_nav, login
from tests.factories import PASSWORD, make_app, make_user
from tests.webhook_support import text_body, webhook_url
from webhooks.models import BlocklistEntry

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def ask_webhook(base_url: str, app, text: str) -> dict:
    request = urllib.request.Request(
        base_url + webhook_url(app),
        data=json.dumps(text_body(text)).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_it_lets_a_moderator_add_a_word_and_try_a_message(page, live_server):
    app = make_app(name="Browser live app")
    moderator = make_user("browser-mod", role=Role.MODERATOR)
    login(page, moderator.username, PASSWORD)
    follow_nav(page, "Blocklists")

    page.get_by_label("Name").fill("Browser words")
    page.get_by_role("button", name="Create list").click()
    page.get_by_role("heading", name="Browser words").wait_for()

    # A bad entry first: the inline form keeps what was typed and says why.
    add = page.locator("#entries section.card")
    add.get_by_label("Kind").select_option("regex")
    add.get_by_label("Term").fill("(a+)+$")
    page.get_by_role("button", name="Add entry").click()
    page.get_by_text("Refused regular expression").wait_for()
    assert add.get_by_label("Term").input_value() == "(a+)+$"

    add.get_by_label("Kind").select_option("word")
    add.get_by_label("Term").fill("jackpot")
    add.get_by_label("Action").select_option("forbid_code")
    add.get_by_label("Error code").fill("10150")
    add.get_by_label("Error text").fill("No gambling talk")
    page.get_by_role("button", name="Add entry").click()
    page.get_by_text("Added “jackpot”.").wait_for()
    entry = BlocklistEntry.objects.get(term="jackpot")
    row = page.locator(f"#entry-{entry.pk}")
    assert "10150" in row.inner_text()
    assert entry.added_by == moderator

    # The webhook answers with it within two seconds of the click, no restart.
    deadline = time.monotonic() + 2.0
    answer = ask_webhook(live_server.url, app, "JACKPOT tonight")
    while answer["ErrorCode"] != 10150 and time.monotonic() < deadline:
        answer = ask_webhook(live_server.url, app, "JACKPOT tonight")
    assert answer == {
        "ActionStatus": "OK",
        "ErrorInfo": "No gambling talk",
        "ErrorCode": 10150,
    }

    follow_nav(page, "Try a message")
    page.get_by_label("App").select_option(label="Browser live app")
    page.get_by_label("Message text").fill("ｊａｃｋｐｏｔ time")
    page.get_by_role("button", name="Try it").click()
    page.locator("#verdict").wait_for()
    assert page.locator("#verdict").inner_text() == "forbid_code"
    assert json.loads(page.locator("#response-json").inner_text()) == answer
    assert page.locator("#try-result").get_by_role("cell", name="jackpot").is_visible()

    # Edit it inline: discard instead.
    follow_nav(page, "Blocklists")
    page.get_by_role("link", name="Browser words").click()
    row = page.locator(f"#entry-{entry.pk}")
    row.get_by_role("link", name="Edit").click()
    row.get_by_label("Action").select_option("discard")
    row.get_by_role("button", name="Save").click()
    row.get_by_text("Discard silently").wait_for()
    assert ask_webhook(live_server.url, app, "jackpot")["ErrorCode"] == 2

    # Disable it inline: the same message is allowed again.
    page.locator(f"#entry-{entry.pk}").get_by_role("button", name="Disable").click()
    page.locator(f"#entry-{entry.pk}").get_by_role("button", name="Enable").wait_for()
    assert ask_webhook(live_server.url, app, "jackpot")["ErrorCode"] == 0
