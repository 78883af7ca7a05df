"""Every CSV export goes through one formula guard; auditors read and export the
webhook decision log (CSV and JSONL, streamed, read-only) and the change history."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from liveadmin.csv_export import csv_cell, csv_uncell
from tests.conftest import client_for
from tests.factories import make_app
from webhooks import services
from webhooks.models import Blocklist, BlocklistEntry, Decision

pytestmark = pytest.mark.django_db

DECISIONS = reverse("webhooks:decision-list")
DECISION_EXPORT = reverse("webhooks:decision-export")
CHANGE_EXPORT = reverse("webhooks:change-export")
EVIL = ['=HYPERLINK("http://evil")', "@evilterm", "+1", "-1", "'quoted", "plain"]


def body_of(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


@pytest.mark.parametrize("text", EVIL)
def test_the_guard_round_trips_every_text(text):
    assert csv_uncell(csv_cell(text)) == text
    assert not csv_cell(text).startswith(("=", "+", "-", "@"))


def test_the_blocklist_export_is_guarded_and_imports_back(moderator):
    blocklist = services.create_list("evil", app=None, actor=moderator)
    for term in EVIL[:2]:
        services.add_entry(blocklist, term=term, actor=moderator)
    response = client_for(moderator).get(
        reverse("webhooks:blocklist-export", args=[blocklist.pk])
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    terms = sorted(r[0] for r in rows[1:])
    assert terms == sorted(['\'=HYPERLINK("http://evil")', "'@evilterm"])
    copy = services.create_list("copy", app=None, actor=moderator)
    report = services.import_entries(copy, response.content.decode(), actor=moderator)
    assert not report.refused
    assert sorted(
        BlocklistEntry.objects.filter(blocklist=copy).values_list("term", flat=True)
    ) == sorted(EVIL[:2])


@pytest.fixture
def decisions():
    app = make_app(name="deciding")
    return [
        Decision.objects.create(
            app=app,
            room_id='=HYPERLINK("http://evil")',
            sender="@someone",
            action=action,
            error_code=10016,
            entry_ids=[1, 2],
            text=f"bad words {n}",
            original={"MsgBody": [{"MsgType": "TIMTextElem"}]},
            response={"ActionStatus": "OK", "ErrorCode": 1},
        )
        for n, action in enumerate(["forbid", "mask", "discard"])
    ]


def test_auditors_read_the_decision_log(auditor, decisions):
    response = client_for(auditor).get(DECISIONS)
    assert response.status_code == 200
    body = response.content.decode()
    assert "bad words 0" in body and 'id="decision-csv"' in body
    assert client_for(auditor).post(DECISIONS).status_code in (403, 405)


def test_auditors_export_the_decision_log_as_csv(auditor, decisions):
    response = client_for(auditor).get(DECISION_EXPORT, {"action": "forbid"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(body_of(response))))
    assert rows[0] == [
        "id",
        "created_at",
        "app",
        "room",
        "sender",
        "action",
        "error_code",
        "entry_ids",
        "text",
        "original",
        "response",
    ]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["room"] == '\'=HYPERLINK("http://evil")' and row["sender"] == "'@someone"
    assert (row["app"], row["action"], row["entry_ids"]) == (
        "deciding",
        "forbid",
        "[1,2]",
    )
    assert row["id"] == str(decisions[0].pk)


def test_auditors_export_the_decision_log_as_jsonl(auditor, decisions):
    response = client_for(auditor).get(DECISION_EXPORT, {"format": "jsonl"})
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in body_of(response).splitlines()]
    assert [line["id"] for line in lines] == [d.pk for d in reversed(decisions)]
    assert lines[0]["room"] == '=HYPERLINK("http://evil")'  # JSON needs no guard
    assert lines[0]["response"] == {"ActionStatus": "OK", "ErrorCode": 1}


def test_the_decision_export_is_for_auditors_and_moderators(
    manager, outsider, moderator, decisions
):
    for user in (manager, outsider):
        assert client_for(user).get(DECISION_EXPORT).status_code == 403
    assert client_for(moderator).get(DECISION_EXPORT).status_code == 200
    assert client_for(moderator).post(DECISION_EXPORT).status_code == 405


def test_the_decision_export_refuses_a_bad_filter(auditor, decisions):
    response = client_for(auditor).get(DECISION_EXPORT, {"app": "not-a-number"})
    assert response.status_code == 400


def test_anonymous_users_go_to_login_for_the_exports(client):
    for url in (DECISION_EXPORT, CHANGE_EXPORT):
        response = client.get(url)
        assert (
            response.status_code == 302 and "/accounts/login/" in response["Location"]
        )


def test_auditors_export_the_change_history_guarded(auditor, moderator):
    services.create_list("=cmd|' /C calc'!A0", app=None, actor=moderator)
    response = client_for(auditor).get(CHANGE_EXPORT)
    rows = list(csv.reader(io.StringIO(body_of(response))))
    assert rows[0][:6] == [
        "id",
        "created_at",
        "actor",
        "object_type",
        "object_id",
        "action",
    ]
    after = rows[1][7]
    assert json.loads(after)["name"] == "=cmd|' /C calc'!A0"
    assert rows[1][2] == "moderator1" and rows[1][5] == "create"
    assert client_for(moderator).get(CHANGE_EXPORT).status_code == 403
    assert Blocklist.objects.count() == 1
