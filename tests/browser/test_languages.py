"""Every page a role reaches, in Korean and in Chinese, as a browser in that language
sees it: no English text outside data, and no text spilling out of its box.

The data the pages show is seeded in Korean and Chinese, so a Latin word left on a
page is interface text, unless it is a name the providers write in Latin (SDKAppID,
UserSig, ZEGO ...) or code and JSON shown as data.
"""

from __future__ import annotations

import re

import pytest

from liveadmin.roles import Role
from messaging.models import ProviderApp
from tests.factories import (
    PASSWORD,
    make_app,
    make_batch,
    make_send_record,
    make_user,
    totp_code,
)
from webhooks.models import Blocklist, BlocklistEntry, Decision

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 900}
BROWSERS = {"ko": "ko-KR", "zh-hans": "zh-CN"}

# Words the providers and the product write in Latin letters in every language.
LATIN_TERMS = {
    "LiveAdmin", "SDKAppID", "UserSig", "AppID", "ServerSecret", "ZEGO", "Tencent",
    "Cloud", "TUILiveKit", "Chat", "IM", "MsgSeq", "MsgRandom", "MsgTime", "MsgDropReason", "Random",
    "JSON", "JSONL", "CSV", "UTF", "URL", "API", "ID", "IDs", "UTC", "GMT", "HTTP", "HTTPS", "REST",
    "TOTP", "QR", "BusinessId", "Data", "TextContent", "ExtensionInfo",
    "CloudCustomData", "Sender_Account", "RoomId", "RoomID", "ErrorCode", "ErrorInfo",
    "ActionStatus", "RequestId", "GroupId", "From_Account", "MsgBody", "IsTest",
    "Group", "CallbackBeforeSendMsg", "CallbackAfterSendMsg", "TIMTextElem",
    "TIMCustomElem", "Redis", "Celery", "PostgreSQL", "SQLite", "Unicode", "regex",
    "KB", "ms", "s", "px", "Asia", "Seoul", "Action", "SendCustomCommand", "UserId", "FailUsers",
}  # fmt: skip
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z_]+")
# Code or examples in a sentence: in braces (a variable, JSON) or in quotes (“bád”).
IN_BRACES = re.compile(r"\{[^{}]*\}|“[^”]*”")

# Visible text of the page, leaving out data shown as code (pre, code, textarea
# contents, input values), the language picker (each language in its own name)
# and the provider host names.
VISIBLE_TEXT = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    if (!text) continue;
    const el = node.parentElement;
    if (el.closest("pre, code, script, style, textarea, .language-picker, [translate=no]")) continue;
    const shown = el.closest("option") ? el.closest("select") : el;
    if (!shown.checkVisibility({visibilityProperty: true})) continue;
    out.push(text);
  }
  for (const el of document.querySelectorAll("[placeholder], [title], [aria-label], input[type=submit]")) {
    if (el.closest(".language-picker")) continue;
    for (const name of ["placeholder", "title", "aria-label", "value"]) {
      if (name === "value" && el.type !== "submit") continue;
      const value = el.getAttribute(name);
      if (value) out.push(value);
    }
  }
  return out;
}"""

# Elements whose content is wider than their box and spills out of it (a box that
# scrolls or clips on purpose does not count).
OVERFLOWING = """() => {
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    if (!el.checkVisibility() || el.clientWidth === 0) continue;
    const style = getComputedStyle(el);
    if (style.overflowX !== "visible" || style.display === "inline") continue;
    if (el.scrollWidth > el.clientWidth + 2) {
      out.push(`${el.tagName.toLowerCase()}.${el.className}: ${el.scrollWidth} > ${el.clientWidth}: ${el.textContent.trim().slice(0, 40)}`);
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth) out.push("the page scrolls sideways");
  return out;
}"""

USERNAMES = {
    Role.MANAGER: "운영자_经理",
    Role.MODERATOR: "심사원_审核",
    Role.AUDITOR: "감사원_审计",
    Role.ADMIN: "관리자_管理",
}


def seed() -> dict[Role, object]:
    """Users of every role and something on every page, named in Korean and Chinese."""
    users = {role: make_user(name, role=role) for role, name in USERNAMES.items()}
    manager = users[Role.MANAGER]
    # Sends fail at once (nothing listens there): the pages get failed rows too.
    app = make_app(
        name="直播应用 라이브", identifier="管理员", base_url="http://127.0.0.1:9"
    )
    for n, outcome in ((1, "ok"), (2, "failed")):
        make_send_record(
            app=app,
            user=manager,
            room_id=f"{n}00{n}",
            sender=f"800{n}",
            outcome=outcome,
            request_id=f"144115-{n}",
        )
    make_batch(
        app,
        rooms=["1001", "2002"],
        actor=manager,
        fields={"sender": "8001", "text": "你好 안녕"},
    )
    blocklist = Blocklist.objects.create(name="违禁词 금칙어", app=app)
    BlocklistEntry.objects.create(blocklist=blocklist, term="坏词")
    Decision.objects.create(
        app=app, room_id="1001", sender="8003", action="forbid", text="坏词 나쁜말"
    )
    return users


def sign_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(user.username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_load_state()
    if "/accounts/2fa/" in page.url:
        page.locator("input[name=code]").fill(totp_code())
        page.locator("form button[type=submit]").last.click()
    page.wait_for_url("**/")


def forms_of(role: Role, users: dict[Role, object]) -> list[str]:
    """Pages no navigation link leads to: the forms and a sender's page."""
    app = ProviderApp.objects.get()
    return {
        Role.MANAGER: ["/templates/new/", "/sandbox/"],
        Role.MODERATOR: [
            f"/blocklists/{Blocklist.objects.get().pk}/edit/",
            f"/moderation/senders/{app.pk}/8003/",
        ],
        Role.AUDITOR: [],
        Role.ADMIN: [
            "/apps/new/",
            f"/apps/{app.pk}/edit/",
            "/users/new/",
            f"/users/{users[Role.MANAGER].pk}/",
            "/accounts/2fa/setup/",
        ],
    }[role]


DETAIL = re.compile(r"/(audit|batches|blocklists|moderation/decisions)/\d+/")


def navigation_of(page) -> list[str]:
    """The home page and every navigation link."""
    return ["/"] + page.locator("#main-nav a.nav-link").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )


def first_detail(page, queued: list[str]) -> str | None:
    """The first link of this page to a detail page not walked yet (its path: once the
    page has sent the browser's time zone, the audit log's links carry ``?tz=``)."""
    for link in page.locator("main a[href]").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    ):
        path = link.split("?", 1)[0]
        if DETAIL.fullmatch(path) and path not in queued:
            return path
    return None


@pytest.mark.parametrize("language", list(BROWSERS))
def test_every_page_of_every_role_is_in_the_browsers_language(
    browser, live_server, language
):
    users = seed()
    data = {str(u.username) for u in users.values()}
    problems: dict[str, list[str]] = {}
    visited: set[str] = set()
    for role, user in users.items():
        context = browser.new_context(
            base_url=live_server.url,
            viewport=DESKTOP,
            locale=BROWSERS[language],
            timezone_id="Asia/Seoul",
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        sign_in(page, user)
        # The navigation, the forms, and the first detail page each list leads to.
        queue = navigation_of(page) + forms_of(role, users)
        for href in queue:
            visited.add(href)
            response = page.goto(href)
            assert response is not None and response.status == 200, (role, href)
            page.wait_for_load_state("load")
            if (detail := first_detail(page, queue)) is not None:
                queue.append(detail)
            assert page.locator("html").get_attribute("lang") == language
            english = set()
            for text in page.evaluate(VISIBLE_TEXT):
                for name in data:
                    text = text.replace(name, "")
                text = IN_BRACES.sub("", text)
                english.update(
                    w for w in LATIN_WORD.findall(text) if w not in LATIN_TERMS
                )
            spilled = page.evaluate(OVERFLOWING)
            if english or spilled:
                problems[f"{role.value} {href}"] = sorted(english) + spilled
        context.close()
    # The walk reached the detail pages too (a send, a batch, a list, a decision).
    for detail in ("audit", "batches", "blocklists", "moderation/decisions"):
        assert any(re.fullmatch(rf"/{detail}/\d+/", href) for href in visited), detail
    assert not problems, "\n".join(
        f"{page}: {found}" for page, found in problems.items()
    )
