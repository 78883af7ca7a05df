"""Signing in and the overview in Chinese and Korean, in Chromium, the language picked
on the sign-in page: the words come from the page's language, and so do the
browser-formatted dates (<html lang>, not the browser's own locale)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from liveadmin.roles import Role
from tests.factories import PASSWORD, make_send_record, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def page_in(browser, live_server):
    # The browser's own locale stays English: only the page's language may change
    # what the dates look like.
    context = browser.new_context(
        base_url=live_server.url, locale="en-US", timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(10_000)
    return context, context.new_page()


@pytest.mark.parametrize(
    "language, words",
    [
        ("zh-hans", ("用户名", "密码", "登录", "概览", "审计", "发送记录", "12月2日")),
        (
            "ko",
            (
                "사용자 이름",
                "비밀번호",
                "로그인",
                "개요",
                "감사",
                "발송 기록",
                "12월 2일",
            ),
        ),
    ],
)
def test_it_signs_in_and_shows_the_overview_in_the_language(
    browser, live_server, language, words
):
    username, password, log_in, overview, heading, section, month = words
    auditor = make_user("i18n-auditor", role=Role.AUDITOR)
    make_send_record(
        user=make_user("i18n-manager", role=Role.MANAGER),
        created_at=datetime(2026, 12, 1, 19, 48, 5, tzinfo=UTC),
    )
    context, page = page_in(browser, live_server)
    try:
        page.goto("/accounts/login/")
        # The picker on the sign-in page (the browser says English).
        with page.expect_navigation():
            page.locator("#language-page").select_option(language)
        page.get_by_label(username).fill(auditor.username)
        page.get_by_label(password).fill(PASSWORD)
        page.get_by_role("button", name=log_in).click()
        page.wait_for_url("**/")
        assert page.locator("h1").inner_text() == overview
        nav = page.locator("#main-nav")
        assert (
            nav.locator('[data-section="Audit"] .nav-heading').inner_text() == heading
        )
        assert nav.get_by_role("link", name=section).is_visible()
        # A send log row's time, formatted by localtime.js in the page's language.
        page.goto("/audit/")
        shown = page.locator("table time[data-localised]").first
        text = shown.text_content() or ""
        assert month in text and "03:48" in text, text
        assert "Dec" not in text
        # Nothing in the navigation is wider than its box in the longer words.
        overflowing = page.evaluate(
            """() => [...document.querySelectorAll('#main-nav a, #main-nav p, #main-nav button')]
                 .filter(el => el.scrollWidth > el.clientWidth + 1).map(el => el.textContent)"""
        )
        assert overflowing == []
    finally:
        context.close()
