from __future__ import annotations

import pytest

from liveadmin.roles import Role
from tests.browser.conftest import login
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Sections a role may see, and links it must see (pages of later features add theirs).
ALLOWED_SECTIONS = {
    Role.MANAGER: {"Messages", "Sandbox"},
    Role.MODERATOR: {"Moderation", "Sandbox"},
    Role.AUDITOR: {"Audit"},
    # Administrators see every batch (Messages > Batches), nothing else of Messages.
    Role.ADMIN: {"Administration", "Messages", "Sandbox"},
}
MUST_SEE = {
    Role.MANAGER: [],
    Role.MODERATOR: [],
    Role.AUDITOR: [],
    Role.ADMIN: ["Provider apps", "Users", "Batches"],
}


@pytest.mark.parametrize("role", list(Role))
def test_it_shows_each_role_its_navigation(page, role):
    user = make_user(f"nav-{role.name.lower()}", role=role)
    login(page, user.username, PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    sections = {
        s.strip().title() for s in nav.locator(".nav-heading").all_inner_texts()
    }
    assert sections <= ALLOWED_SECTIONS[role]
    for label in MUST_SEE[role]:
        assert nav.get_by_role("link", name=label).is_visible()
    assert page.locator(".who").inner_text() == user.username


def test_it_lets_an_administrator_add_an_app(page):
    admin = make_user("browser-admin", role=Role.ADMIN)
    login(page, admin.username, PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Provider apps"
    ).click()
    page.get_by_role("link", name="Add app").click()
    page.get_by_label("Name").fill("Browser app")
    page.get_by_label("Provider").select_option("tencent")
    page.get_by_label("SDKAppID / AppId").fill("not-a-number")
    page.get_by_label("Region").select_option("singapore")
    page.get_by_label("Admin identifier").fill("administrator")
    page.get_by_label("Secret key").fill("typed-secret")
    page.get_by_role("button", name="Save app").click()
    assert page.get_by_text("The SDKAppID must be a number").is_visible()
    assert page.get_by_label("Name").input_value() == "Browser app"
    assert page.get_by_label("Secret key").input_value() == ""
    page.get_by_label("SDKAppID / AppId").fill("1400009999")
    page.get_by_label("Secret key").fill("typed-secret")
    page.get_by_role("button", name="Save app").click()
    assert page.get_by_role("cell", name="Browser app").is_visible()
    assert "typed-secret" not in page.content()


def test_it_offers_the_regions_of_the_chosen_provider(page):
    admin = make_user("region-admin", role=Role.ADMIN)
    login(page, admin.username, PASSWORD)
    page.goto("/apps/new/")
    region = page.get_by_label("Region")
    page.get_by_label("Provider").select_option("tencent")
    tencent = region.locator("option").evaluate_all("o => o.map(x => x.value)")
    assert "singapore" in tencent and "sgp" not in tencent
    page.get_by_label("Provider").select_option("zego")
    zego = region.locator("option").evaluate_all("o => o.map(x => x.value)")
    assert "sgp" in zego and "singapore" not in zego
