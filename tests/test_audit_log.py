from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from liveadmin.csv_export import csv_cell
from liveadmin.roles import Role
from messaging.models import SendRecord
from messaging.services.audit import (
    EXPORT_HEADER,
    Cursor,
    LogFilter,
    filter_send_log,
    iterate_send_log,
    page_send_log,
)
from tests.conftest import client_for
from tests.factories import make_app, make_send_record, make_user

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
AUDIT = reverse("messaging:audit")
EXPORT = reverse("messaging:audit-export")


def listed_ids(response) -> list[int]:
    return [r.pk for r in response.context["page"].records]


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def log(manager):
    """Five sends, two of them by another manager, spread over apps and outcomes."""
    other = make_user("manager2", role=Role.MANAGER)
    app_a, app_b = make_app(name="alpha"), make_app(name="beta", provider="zego")
    return {
        "app_a": app_a,
        "app_b": app_b,
        "other": other,
        "ok": make_send_record(
            app=app_a, user=manager, room_id="room-1", created_at=T0, msg_seq=7
        ),
        "failed": make_send_record(
            app=app_a,
            user=manager,
            room_id="room-2",
            outcome="failed",
            error_code=10017,
            error_info="user is muted",
            created_at=T0 + timedelta(minutes=1),
        ),
        "custom": make_send_record(
            app=app_b,
            user=manager,
            kind="command",
            room_id="room-1",
            sender="zego-host",
            created_at=T0 + timedelta(minutes=2),
        ),
        "theirs": make_send_record(
            app=app_a,
            user=other,
            room_id="room-9",
            request_id="their-req",
            created_at=T0 + timedelta(minutes=3),
        ),
        "theirs_failed": make_send_record(
            app=app_b,
            user=other,
            room_id="room-9",
            outcome="failed",
            error_code=20004,
            created_at=T0 + timedelta(minutes=4),
        ),
    }


# --- who sees what ----------------------------------------------------------------


def test_it_shows_an_auditor_every_send(auditor, log):
    response = client_for(auditor).get(AUDIT)
    assert response.status_code == 200
    assert listed_ids(response) == [
        log[k].pk for k in ["theirs_failed", "theirs", "custom", "failed", "ok"]
    ]
    assert b"Send log" in response.content
    assert b"manager2" in response.content


def test_it_shows_a_manager_only_their_own_sends(manager, log):
    response = client_for(manager).get(AUDIT)
    assert response.status_code == 200
    assert listed_ids(response) == [log[k].pk for k in ["custom", "failed", "ok"]]
    assert b"My sends" in response.content
    # A manager's filters have no user filter, and filtering cannot widen the set.
    assert b'name="user"' not in response.content
    response = client_for(manager).get(AUDIT, {"request_id": "their-req"})
    assert listed_ids(response) == []


def test_it_refuses_other_roles(moderator, outsider, admin_user):
    for user in (moderator, outsider, admin_user):
        assert client_for(user).get(AUDIT).status_code == 403
        assert client_for(user).get(EXPORT).status_code == 403


def test_it_sends_anonymous_users_to_login(client):
    response = client.get(AUDIT + "?outcome=failed")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- filters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"app": "app_b"}, ["theirs_failed", "custom"]),
        ({"kind": "command"}, ["custom"]),
        ({"outcome": "failed"}, ["theirs_failed", "failed"]),
        ({"error_code": "10017"}, ["failed"]),
        ({"room": "room-1"}, ["custom", "ok"]),
        ({"sender": "zego-host"}, ["custom"]),
        ({"user": "manager2"}, ["theirs_failed", "theirs"]),
        ({"request_id": "their-req"}, ["theirs"]),
        ({"msg_seq": "7"}, ["ok"]),
        ({"room": "room-9", "outcome": "ok"}, ["theirs"]),
    ],
)
def test_it_filters_the_log(auditor, log, params, expected):
    if "app" in params:
        params = {**params, "app": log[params["app"]].pk}
    response = client_for(auditor).get(AUDIT, params)
    assert response.status_code == 200
    assert listed_ids(response) == [log[k].pk for k in expected]


def test_it_reads_the_time_range_in_the_users_time_zone(auditor, log):
    # Tokyo is UTC+9: 21:01 there is 12:01 UTC; "until" is exclusive.
    response = client_for(auditor).get(
        AUDIT,
        {"since": "2026-01-10T21:01", "until": "2026-01-10T21:03", "tz": "Asia/Tokyo"},
    )
    assert listed_ids(response) == [log["custom"].pk, log["failed"].pk]
    assert b"Asia/Tokyo" in response.content
    # The table shows times in that zone too.
    assert b"2026-01-10 21:02:00" in response.content


def test_it_reads_the_time_range_in_the_site_zone_without_one(auditor, log):
    response = client_for(auditor).get(AUDIT, {"since": "2026-01-10T12:03"})
    assert listed_ids(response) == [log["theirs_failed"].pk, log["theirs"].pk]


def test_it_keeps_typed_values_on_bad_input(auditor, log):
    response = client_for(auditor).get(
        AUDIT,
        {
            "error_code": "ten",
            "user": "nobody-here",
            "room": "room-1",
            "since": "2026-01-11T00:00",
            "until": "2026-01-10T00:00",
        },
    )
    assert response.status_code == 200
    assert response.context["page"] is None
    body = response.content.decode()
    assert "Enter a whole number." in body
    assert "No user is called “nobody-here”." in body
    assert "Must be later than “From”." in body
    assert 'value="ten"' in body
    assert 'value="nobody-here"' in body
    assert 'value="room-1"' in body
    assert 'value="2026-01-11T00:00"' in body


def test_it_reports_a_broken_paging_link(auditor, log):
    response = client_for(auditor).get(AUDIT, {"after": "garbage"})
    assert response.status_code == 200
    assert "This paging link is broken" in response.content.decode()


# --- keyset paging -----------------------------------------------------------------


@pytest.fixture
def many(db):
    """130 sends in 13 timestamps of 10 equal ones, so pages split ties."""
    app, user = make_app(), make_user()
    records = [
        make_send_record(app=app, user=user, created_at=T0 + timedelta(seconds=i // 10))
        for i in range(130)
    ]
    # Newest first, ties by id descending.
    return sorted(records, key=lambda r: (r.created_at, r.pk), reverse=True)


def test_it_pages_through_equal_timestamps_without_gaps_or_repeats(auditor, many):
    client = client_for(auditor)
    expected = [r.pk for r in many]
    seen, pages, params = [], [], {}
    while True:
        response = client.get(AUDIT, params)
        page = response.context["page"]
        pages.append([r.pk for r in page.records])
        seen += pages[-1]
        if page.older is None:
            break
        params = {"after": page.older.encode()}
    assert seen == expected
    assert [len(p) for p in pages] == [50, 50, 30]
    # And back again, newer page by newer page, to the first one.
    back = [pages[-1]]
    while True:
        cursor = response.context["page"].newer
        if cursor is None:
            break
        response = client.get(AUDIT, {"before": cursor.encode()})
        back.append(listed_ids(response))
    assert back[::-1] == pages


def test_it_pages_a_filtered_list_with_the_filter_kept(auditor, many):
    response = client_for(auditor).get(AUDIT, {"outcome": "ok", "tz": "UTC"})
    older = response.context["page"].older.encode()
    body = response.content.decode()
    link = f"{AUDIT}?outcome=ok&amp;tz=UTC&amp;after={older}"
    assert f'href="{link}"' in body
    assert f'hx-get="{link}"' in body


def test_it_gives_every_htmx_link_a_real_href(auditor, many):
    response = client_for(auditor).get(AUDIT, {"after": Cursor.of(many[60]).encode()})
    body = response.content.decode()
    tags = re.findall(r"<a [^>]*hx-get=[^>]*>", body)
    assert len(tags) == 3  # Newest, Newer, Older
    for tag in tags:
        assert re.search(r'href="([^"]+)"', tag).group(1) == re.search(
            r'hx-get="([^"]+)"', tag
        ).group(1)


def test_it_pages_with_the_service_directly(many):
    queryset = SendRecord.objects.all()
    page = page_send_log(queryset, size=7)
    assert [r.pk for r in page.records] == [r.pk for r in many[:7]]
    assert page.newer is None
    page = page_send_log(queryset, after=page.older, size=7)
    assert [r.pk for r in page.records] == [r.pk for r in many[7:14]]
    page = page_send_log(queryset, before=page.newer, size=7)
    assert [r.pk for r in page.records] == [r.pk for r in many[:7]]
    assert page.newer is None


def test_it_round_trips_a_cursor(many):
    cursor = Cursor(datetime(2026, 3, 1, 8, 5, 6, 789012, tzinfo=UTC), 42)
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ["", "x.1", "1.", "1.x", "99999999999999999999999.1"]:
        with pytest.raises(ValueError):
            Cursor.decode(bad)


@pytest.mark.parametrize("chunk_size", [9, 10, 500])
def test_it_iterates_in_keyset_chunks(many, chunk_size):
    # 500: a first chunk of 100 rows, then one of the remaining 30.
    queryset = SendRecord.objects.all()
    ids = [r.pk for r in iterate_send_log(queryset, chunk_size=chunk_size)]
    assert ids == [r.pk for r in many]


# --- htmx ----------------------------------------------------------------------------


def test_it_answers_htmx_with_the_table_only(auditor, log):
    response = client_for(auditor).get(
        AUDIT, {"outcome": "failed"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="audit-table">')
    assert "<html" not in body and "<form" not in body
    assert f'id="send-{log["failed"].pk}"' in body
    assert f'id="send-{log["ok"].pk}"' not in body
    assert "HX-Request" in response["Vary"]


def test_it_answers_an_htmx_history_restore_with_the_page(auditor, log):
    response = client_for(auditor).get(
        AUDIT,
        {"outcome": "failed"},
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert b"<html" in response.content


def test_it_wires_the_filter_form_for_htmx_with_a_plain_fallback(auditor, log):
    body = client_for(auditor).get(AUDIT).content.decode()
    form = re.search(r"<form [^>]*audit-filters[^>]*>", body, re.S).group(0)
    assert 'method="get"' in form and f'action="{AUDIT}"' in form
    assert f'hx-get="{AUDIT}"' in form
    # Only the table is replaced, never the field being typed in (issue 13, point 5).
    assert 'hx-target="#audit-table"' in form
    assert 'hx-push-url="true"' in form


# --- detail -------------------------------------------------------------------------


def test_it_shows_every_field_of_an_entry(auditor, log):
    failed = log["failed"]
    # A final row never changes: the same send, written final with these answers.
    record = make_send_record(
        app=failed.app,
        user=failed.user,
        room_id=failed.room_id,
        outcome="failed",
        error_code=10017,
        error_info="user is muted",
        created_at=failed.created_at,
        msg_time=1768046460,
        drop_reason="",
        http_status=200,
        latency_ms=87,
        attempts=2,
    )
    response = client_for(auditor).get(
        reverse("messaging:audit-detail", args=[record.pk])
    )
    body = response.content.decode()
    assert response.status_code == 200
    for text in [
        "Failed",
        "FAIL",
        "10017",
        "user is muted",
        record.request_id,
        "87 ms",
        "manager1",
        "alpha",
        "Room text message",
        "room-2",
        "2026-01-10 12:01:00",  # MsgTime as a time
        "&quot;GroupId&quot;: &quot;room-2&quot;",  # pretty JSON, two-space indent
        "&quot;ErrorCode&quot;: 10017",
    ]:
        assert text in body, text


def test_it_lets_a_manager_open_only_their_own_entries(manager, log):
    client = client_for(manager)
    own = client.get(reverse("messaging:audit-detail", args=[log["ok"].pk]))
    assert own.status_code == 200
    theirs = client.get(reverse("messaging:audit-detail", args=[log["theirs"].pk]))
    assert theirs.status_code == 404


def test_it_refuses_the_detail_to_other_roles(moderator, client, log):
    url = reverse("messaging:audit-detail", args=[log["ok"].pk])
    assert client_for(moderator).get(url).status_code == 403
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_404s_on_a_missing_entry(auditor, log):
    url = reverse("messaging:audit-detail", args=[999999])
    assert client_for(auditor).get(url).status_code == 404


# --- CSV ----------------------------------------------------------------------------


def test_it_streams_the_filtered_log_as_csv(auditor, log):
    response = client_for(auditor).get(EXPORT, {"outcome": "failed"})
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="send-log-\d{8}-\d{6}\.csv"',
        response["Content-Disposition"],
    )
    rows = csv_rows(response)
    assert rows[0] == EXPORT_HEADER
    assert rows[0][:8] == [
        "id",
        "created_at",
        "user",
        "app",
        "kind",
        "room",
        "sender",
        "outcome",
    ]
    failed, theirs = log["failed"], log["theirs_failed"]
    assert [r[0] for r in rows[1:]] == [str(theirs.pk), str(failed.pk)]
    row = dict(zip(rows[0], rows[2], strict=True))
    # PostgreSQL's jsonb keeps its own key order: compare the JSON, not the text.
    assert json.loads(row.pop("request_body")) == failed.request_body
    assert json.loads(row.pop("response_body")) == failed.response_body
    assert row == {
        "id": str(failed.pk),
        "created_at": "2026-01-10T12:01:00+00:00",
        "user": "manager1",
        "app": "alpha",
        "kind": "text",
        "room": "room-2",
        "sender": "host",
        "outcome": "failed",
        "action_status": "FAIL",
        "error_code": "10017",
        "error_info": "user is muted",
        "request_id": failed.request_id,
        "msg_seq": "",
        "msg_time": "",
        "drop_reason": "",
        "http_status": "200",
        "latency_ms": "42",
        "attempts": "1",
        "random": str(failed.random),
        "user_id": str(failed.user_id),
        "app_id": str(failed.app_id),
        "batch_id": "",
        "retryable": "false",
        # Not linked yet (the linker runs after the send path, see test_audit_chain).
        "chain_seq": "",
        "chain_hash": "",
    }


def test_it_exports_only_a_managers_own_sends(manager, log):
    rows = csv_rows(client_for(manager).get(EXPORT))
    assert [int(r[0]) for r in rows[1:]] == [
        log[k].pk for k in ["custom", "failed", "ok"]
    ]


def test_it_links_the_csv_download_to_the_current_filters(auditor, log):
    response = client_for(auditor).get(
        AUDIT, {"room": "room-1", "tz": "UTC"}, headers={"HX-Request": "true"}
    )
    assert f'href="{EXPORT}?room=room-1&amp;tz=UTC"' in response.content.decode()
    rows = csv_rows(client_for(auditor).get(EXPORT, {"room": "room-1", "tz": "UTC"}))
    assert [int(r[0]) for r in rows[1:]] == [log["custom"].pk, log["ok"].pk]


def test_it_guards_csv_cells_against_formula_injection(auditor):
    record = make_send_record(
        room_id='=HYPERLINK("http://evil")',
        sender="@SUM(1)",
        error_code=-1,
        error_info="+cmd|' /C calc'!A0",
        request_id="-2+3",
    )
    rows = csv_rows(client_for(auditor).get(EXPORT))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["room"] == '\'=HYPERLINK("http://evil")'
    assert row["sender"] == "'@SUM(1)"
    assert row["error_info"] == "'+cmd|' /C calc'!A0"
    assert row["request_id"] == "'-2+3"
    # Numbers stay numbers.
    assert row["error_code"] == "-1"
    assert row["id"] == str(record.pk)


def test_it_rejects_a_bad_filter_in_the_csv_download(auditor, log):
    response = client_for(auditor).get(EXPORT, {"msg_seq": "x"})
    assert response.status_code == 400
    assert "msg_seq" in response.content.decode()


def test_it_filters_with_the_same_function_everywhere(log):
    queryset = filter_send_log(
        SendRecord.objects.all(), LogFilter(app=log["app_a"], outcome="ok")
    )
    assert sorted(queryset.values_list("pk", flat=True)) == sorted(
        [log["ok"].pk, log["theirs"].pk]
    )


def test_it_answers_the_filter_form_with_form_and_table(auditor, log):
    headers = {"HX-Request": "true", "HX-Target": "audit-main"}
    response = client_for(auditor).get(AUDIT, {"error_code": "x1"}, headers=headers)
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="audit-main">')
    assert "<html" not in body
    assert "Enter a whole number." in body and 'value="x1"' in body
    response = client_for(auditor).get(AUDIT, {"error_code": "10017"}, headers=headers)
    body = response.content.decode()
    assert "Enter a whole number." not in body
    assert f'id="send-{log["failed"].pk}"' in body


def test_it_attaches_app_and_user_to_every_exported_row(log):
    got = [
        (r.pk, r.app.name, r.user.username)
        for r in iterate_send_log(SendRecord.objects.all(), chunk_size=2)
    ]
    assert got == [
        (log[k].pk, log[k].app.name, log[k].user.username)
        for k in ["theirs_failed", "theirs", "custom", "failed", "ok"]
    ]


def test_it_explains_the_error_code_and_the_drop_reason(auditor, log):
    failed = log["failed"]  # Tencent 10017
    body = (
        client_for(auditor)
        .get(reverse("messaging:audit-detail", args=[failed.pk]))
        .content.decode()
    )
    assert "user is muted" in body  # ErrorInfo as the provider sent it
    assert "The sender is muted and cannot send messages." in body
    dropped = make_send_record(
        app=log["app_a"], outcome="dropped", error_code=0, drop_reason="MsgFreqCtrl"
    )
    body = (
        client_for(auditor)
        .get(reverse("messaging:audit-detail", args=[dropped.pk]))
        .content.decode()
    )
    assert "MsgFreqCtrl" in body
    assert "Send it again in a moment." in body


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (-5, "-5"),
        (True, "true"),
        ("plain", "plain"),
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@A1", "'@A1"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ({"k": "=v"}, '{"k":"=v"}'),
        (["=x"], '["=x"]'),
    ],
)
def test_it_renders_csv_cells(value, cell):
    assert csv_cell(value) == cell


@pytest.mark.parametrize("tz", ["Mars/Olympus", "../../etc/passwd", "x" * 5000])
def test_it_falls_back_to_the_site_time_zone_for_an_unknown_one(auditor, log, tz):
    response = client_for(auditor).get(AUDIT, {"tz": tz})
    assert response.status_code == 200
    assert '<span id="audit-tz">UTC</span>' in response.content.decode()
    assert len(listed_ids(response)) == 5
