"""The review queue and a dry run, in real Chromium."""

from __future__ import annotations

import pytest

from liveadmin.roles import Role
from tests.browser.conftest import login
from tests.factories import PASSWORD, make_app, make_user
from webhooks import services
from webhooks.models import Decision, Sanction
from webhooks.recent import recent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_moderator_works_the_queue(page):
    app = make_app(name="Queue app")
    moderator = make_user("queue-mod", role=Role.MODERATOR)
    first = Decision.objects.create(
        app=app,
        room_id="r1",
        sender="amy",
        text="maybe spam",
        action="flag",
        review="open",
    )
    second = Decision.objects.create(
        app=app,
        room_id="r2",
        sender="bob",
        text="buy pills",
        action="flag",
        review="open",
    )
    login(page, moderator.username, PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    assert nav.locator(".nav-count").inner_text() == "2"
    nav.get_by_role("link", name="Review queue").click()
    page.wait_for_url("**/moderation/queue/")

    page.locator(f"#review-{first.pk}").get_by_role("button", name="Dismiss").click()
    page.locator(f'#review-{first.pk}[data-review="dismissed"]').wait_for()

    item = page.locator(f"#review-{second.pk}")
    item.get_by_label("For", exact=True).select_option("60")
    item.get_by_role("button", name="Mute sender").click()
    page.locator(f'#review-{second.pk}[data-review="muted"]').wait_for()
    sanction = Sanction.objects.get()
    assert (sanction.sender, sanction.room_id, sanction.created_by) == (
        "bob",
        "",
        "queue-mod",
    )
    page.reload()
    page.get_by_text("Nothing waits for review.").wait_for()
    assert page.locator(".nav-count").count() == 0


def test_a_draft_entry_is_tested_against_recent_traffic(page):
    app = make_app(name="Dry app")
    own = services.create_list("Dry words", app=app)
    recent.clear(app.pk)
    for sender, text in (("amy", "win a jackpot"), ("bob", "hello")):
        recent.note(app.pk, "room-1", sender, text, "allow", 200)
    recent.flush()
    moderator = make_user("dry-mod", role=Role.MODERATOR)
    login(page, moderator.username, PASSWORD)
    page.goto(f"/blocklists/{own.pk}/")
    add = page.locator("#entries section.card")
    add.get_by_label("Term").fill("jackpot")
    add.get_by_role("button", name="Test against recent traffic").click()
    page.locator(".dryrun-count").wait_for()
    assert page.locator(".dryrun-count").inner_text() == "1"
    assert "win a jackpot" in page.locator("#dryrun-result").inner_text()
    assert not own.entries.exists()
    recent.clear(app.pk)
