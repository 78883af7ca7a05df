"""Every page of the navigation fits a 390 px phone, for every role; times show in
the viewer's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from liveadmin.roles import Role
from tests.browser.conftest import login
from tests.factories import PASSWORD, make_app, make_send_record, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, viewport=PHONE, timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def _some_data(manager) -> None:
    app = make_app(name="A rather long provider app name for a narrow screen")
    for outcome in ("ok", "failed"):
        make_send_record(
            app=app,
            user=manager,
            outcome=outcome,
            room_id="room-with-a-very-long-identifier-0123456789",
            created_at=datetime.now(tz=UTC) - timedelta(minutes=5),
        )


@pytest.mark.parametrize("role", list(Role))
def test_it_fits_every_navigation_page_on_a_phone(phone, role):
    user = make_user(f"phone-{role.name.lower()}", role=role)
    _some_data(
        make_user("phone-sender", role=Role.MANAGER)
        if role is not Role.MANAGER
        else user
    )
    login(phone, user.username, PASSWORD)
    nav = phone.get_by_role("navigation", name="Main")
    assert not nav.is_visible()  # collapsed behind the menu button
    phone.get_by_role("button", name="Menu").click()
    assert nav.is_visible()
    hrefs = nav.locator("a.nav-link").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    assert len(hrefs) >= 2
    too_wide = {}
    for href in hrefs:
        response = phone.goto(href)
        assert response is not None and response.status == 200, href
        phone.wait_for_load_state("load")
        width = phone.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[href] = width
    assert too_wide == {}


def test_it_shows_times_in_the_viewers_zone_with_utc_on_hover(phone):
    auditor = make_user("tz-auditor", role=Role.AUDITOR)
    # 19:48 UTC on Dec 1 is 03:48 on Dec 2 in Shanghai (UTC+8): another calendar date.
    make_send_record(
        user=make_user("tz-manager", role=Role.MANAGER),
        created_at=datetime(2026, 12, 1, 19, 48, 5, tzinfo=UTC),
        msg_time=int(datetime(2026, 12, 1, 19, 48, 6, tzinfo=UTC).timestamp()),
    )
    login(phone, auditor.username, PASSWORD)
    phone.goto("/audit/")
    shown = phone.locator("table time[data-localised]").first
    text = shown.text_content()
    assert "Dec 2" in text and "03:48:05" in text and "GMT+8" in text, text
    assert shown.get_attribute("title") == "2026-12-01 19:48:05 UTC"
    # The log entry: MsgTime (Unix seconds from the provider) is a time like the others.
    phone.locator("table a").first.click()
    msg_time = phone.locator("dt:text-is('MsgTime') + dd time[data-localised]")
    assert "03:48:06" in msg_time.text_content() and "GMT+8" in msg_time.text_content()
    phone.goto("/?range=week")
    assert "Asia/Shanghai" in phone.locator("[data-timezone-name]").inner_text()
    assert phone.locator("time[data-local]:not([data-localised])").count() == 0
