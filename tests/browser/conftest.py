"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright: one browser per
test run, a fresh context per test, the site served by pytest-django's live_server.
"""

from __future__ import annotations

import os
import shutil

import pytest

# Playwright's sync API runs an event loop in this thread; the Django ORM calls the
# tests make between page actions are synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = (
    os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def login(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    if "/accounts/2fa/" in page.url:  # administrators: the authenticator's code
        from tests.factories import totp_code

        page.get_by_label("Code").fill(totp_code())
        page.get_by_role("button", name="Verify").click()
    page.wait_for_url("**/")


def follow_nav(page, label: str) -> None:
    """Click a main-navigation link and wait for the new page's load event, when htmx has
    bound its listeners (acting earlier can race with the navigation)."""
    link = page.get_by_role("navigation", name="Main").get_by_role(
        "link", name=label, exact=True
    )
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(f"**{href}")
