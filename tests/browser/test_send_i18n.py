"""The send page's script in Korean: its texts come from the page, translated, and
its numbers are formatted for the page's language."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from liveadmin.roles import Role
from tests.browser.conftest import login
from tests.factories import PASSWORD, make_app, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_byte_counter_and_json_hint_speak_korean(page):
    user = make_user("browser-manager", role=Role.MANAGER)
    login(page, user.username, PASSWORD)
    page.context.set_extra_http_headers({"Accept-Language": "ko-KR,ko;q=0.9"})
    app = make_app(name="Tencent app")
    page.goto(f"/send/?app={app.pk}")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    counter = page.locator("#id_text-counter")
    expect(counter).to_have_text("0 / 12,288바이트")
    page.get_by_role("textbox", name="텍스트", exact=True).fill("héllo 👋")
    expect(counter).to_have_text("11 / 12,288바이트")
    extension = page.get_by_label("확장 정보")
    extension.fill('{"level": ')
    expect(page.locator("#id_extension_info-json")).to_contain_text(
        "아직 유효한 JSON이 아닙니다: "
    )
    extension.fill('{"level": 3}')
    expect(page.locator("#id_extension_info-json")).to_have_text("유효한 JSON")
    extension.fill('{"host": "{host_name}"}')
    expect(page.locator("#id_extension_info-json")).to_have_text(
        "변수가 채워진 후 JSON으로 검사합니다."
    )
