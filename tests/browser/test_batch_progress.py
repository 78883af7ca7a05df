"""A community manager resumes a batch in Chromium and watches its live progress."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from liveadmin.roles import Role
from messaging import dispatch
from messaging.models import BatchStatus
from messaging.services import batches
from tests.browser.conftest import login
from tests.factories import PASSWORD, make_app, make_sandbox_app, make_user
from tests.sandbox_support import WebhookReceiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_shows_live_progress_until_the_batch_is_done(page, live_server, settings):
    settings.CELERY_BROKER_URL = ""
    manager = make_user("manager1", role=Role.MANAGER)
    rooms = [f"room-{i}" for i in range(20)]
    app = make_app(base_url=f"{live_server.url}/sandbox", rate_limit=10)
    with WebhookReceiver() as hook:
        make_sandbox_app(app, rooms=tuple(rooms), callback_url=hook.url)
        batch = batches.start_batch(
            app,
            "text",
            {"sender": "host-1", "text": "hi"},
            rooms,
            actor=manager,
            scheduled_at=None,
        )
        batches.pause(batch, actor=manager)
        try:
            login(page, "manager1", PASSWORD)
            page.goto(f"/batches/{batch.pk}/")
            progress = page.locator("#batch-progress")
            expect(progress.locator("[data-status]")).to_have_text("Paused")
            page.get_by_role("button", name="Resume").click()
            expect(page.get_by_text("Batch resumed.")).to_be_visible()
            # The fragment is polled every second while the rooms are sent (10/s).
            expect(progress.locator('[data-count="waiting"]')).not_to_have_text("0")
            expect(progress.locator('[data-count="ok"]')).to_have_text(
                "20", timeout=15_000
            )
            expect(progress.locator("[data-status]")).to_have_text("Done")
            expect(progress.locator('[data-count="waiting"]')).to_have_text("0")
            # Status 286 stopped the polling: the last fragment has no trigger.
            expect(progress).not_to_have_attribute("hx-trigger", "every 1s")
            expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
        finally:
            dispatch.wait_idle()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE
