"""Signing in with TOTP in real Chromium: an administrator sets up an authenticator,
keeps the recovery codes, and signs in again with a code; the page runs under the
Content-Security-Policy without a violation."""

from __future__ import annotations

import base64

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from liveadmin.roles import Role
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def code_for(secret: str, drift: int = 0) -> str:
    """What an authenticator app shows for the base32 key the page printed."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key, drift=drift):06d}"


def test_an_administrator_sets_up_totp_and_signs_in_with_it(page):
    admin = make_user("totp-admin", role=Role.ADMIN)
    TOTPDevice.objects.filter(user=admin).delete()  # a new administrator: no device yet
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: (
            violations.append(msg.text)
            if "Content Security Policy" in msg.text
            else None
        ),
    )

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("totp-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/accounts/2fa/setup/**")
    assert page.get_by_text(
        "Administrators must sign in with a second factor"
    ).is_visible()
    assert page.locator(".qr svg").is_visible()
    secret = page.locator("#otp-secret").inner_text()
    page.get_by_label("Code").fill(code_for(secret))
    page.get_by_role("button", name="Turn on").click()
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name="Continue").click()
    page.wait_for_url("**/")
    assert page.locator(".who").inner_text() == "totp-admin"

    # Sign out, then in again: password, then the authenticator's next code.
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("totp-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/accounts/2fa/**")
    page.get_by_label("Code").fill(code_for(secret, drift=1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url("**/")
    assert page.locator(".who").inner_text() == "totp-admin"
    page.goto("/apps/")
    assert page.get_by_role("heading", name="Provider apps").is_visible()
    assert violations == []
