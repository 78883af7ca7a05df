from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest

from liveadmin.roles import Role
from messaging.services.audit import EXPORT_HEADER
from tests.browser.conftest import follow_nav, login
from tests.factories import PASSWORD, make_app, make_send_record, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_it_lets_an_auditor_filter_the_log_and_download_the_csv(page):
    auditor = make_user("browser-auditor", role=Role.AUDITOR)
    manager = make_user("browser-manager", role=Role.MANAGER)
    app = make_app(name="live-main")
    ok = make_send_record(app=app, user=manager, room_id="room-a", created_at=T0)
    failed = [
        make_send_record(
            app=app,
            user=manager,
            room_id=f"room-{i}",
            outcome="failed",
            error_code=10017,
            error_info="=muted member",
            created_at=T0 + timedelta(minutes=i),
        )
        for i in (1, 2)
    ]

    login(page, auditor.username, PASSWORD)
    follow_nav(page, "Send log")
    rows = page.locator("#audit-table tbody tr")
    assert rows.count() == 3

    # Choosing an outcome swaps the table through htmx and updates the URL.
    page.get_by_label("Outcome").select_option("failed")
    page.wait_for_url(re.compile(r"/audit/\?outcome=failed&tz=[^&]+$"))
    assert rows.count() == 2
    assert page.locator(f"#send-{ok.pk}").count() == 0
    assert page.get_by_label("Outcome").input_value() == "failed"

    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("send-log-")
    with open(download.path(), encoding="utf-8", newline="") as handle:
        table = list(csv.reader(io.StringIO(handle.read())))
    assert table[0] == EXPORT_HEADER
    got = [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    assert [(r["id"], r["room"], r["outcome"], r["error_info"]) for r in got] == [
        (str(failed[1].pk), "room-2", "failed", "'=muted member"),
        (str(failed[0].pk), "room-1", "failed", "'=muted member"),
    ]
    assert {r["user"] for r in got} == {"browser-manager"}

    # The filtered view is bookmarkable: reloading the pushed URL shows the same rows.
    page.reload()
    assert rows.count() == 2
    page.locator(f"#send-{failed[0].pk} a").click()
    assert page.get_by_role("heading", name=f"Send #{failed[0].pk}").is_visible()
    assert page.locator("#request-body").inner_text().startswith("{")


def test_it_never_loses_what_is_typed_in_the_filters(page):
    auditor = make_user("filter-auditor", role=Role.AUDITOR)
    manager = make_user("administrator", role=Role.MANAGER)
    app = make_app(name="filter-app")
    other = make_app(name="other-app")
    wanted = make_send_record(
        app=app, user=manager, room_id="room-x", outcome="failed", created_at=T0
    )
    make_send_record(app=other, user=manager, room_id="room-x", created_at=T0)
    make_send_record(app=app, user=manager, room_id="room-y", created_at=T0)

    login(page, auditor.username, PASSWORD)
    follow_nav(page, "Send log")
    rows = page.locator("#audit-table tbody tr")
    # Typing in Room then User, at a person's pace: nothing typed is lost while the
    # table refreshes between the two.
    page.get_by_label("Room").press_sequentially("room-x", delay=40)
    page.wait_for_url(re.compile(r"room=room-x"))
    page.get_by_label("User").press_sequentially("administrator", delay=40)
    assert page.get_by_label("User").input_value() == "administrator"
    page.wait_for_url(re.compile(r"user=administrator"))
    assert page.get_by_label("Room").input_value() == "room-x"
    # App then Outcome chosen quickly: both stay, both apply.
    page.get_by_label("App").select_option(label="filter-app")
    page.get_by_label("Outcome").select_option("failed")
    page.wait_for_url(re.compile(r"app=\d+.*outcome=failed|outcome=failed.*app=\d+"))
    assert page.get_by_label("App").input_value() == str(app.pk)
    assert page.get_by_label("Outcome").input_value() == "failed"
    page.wait_for_function(
        "document.querySelectorAll('#audit-table tbody tr').length == 1"
    )
    assert page.locator(f"#send-{wanted.pk}").count() == 1
    # Until survives the other filters, and the whole filter is in the URL.
    page.get_by_label("Until").fill("2026-03-02T00:00")
    page.wait_for_url(re.compile(r"until=2026-03-02T00%3A00|until=2026-03-02T00:00"))
    page.reload()
    assert page.get_by_label("Until").input_value() == "2026-03-02T00:00"
    assert page.get_by_label("User").input_value() == "administrator"
    assert rows.count() == 1
