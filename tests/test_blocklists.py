"""Blocklist services and the moderator / auditor pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import client_for
from tests.factories import make_app
from tests.webhook_support import OK, post_webhook, text_body, webhook_url
from webhooks import services
from webhooks.models import (
    Blocklist,
    BlocklistChange,
    BlocklistEntry,
    Decision,
    RulesVersion,
)
from webhooks.recorder import recorder

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(db):
    return make_app(name="live-app")


@pytest.fixture
def blocklist(db):
    return services.create_list("Main", app=None)


def version_now() -> int:
    return RulesVersion.objects.get(pk=1).version


# --- services ---------------------------------------------------------------------------


def test_it_records_every_change_with_before_and_after(blocklist, moderator):
    entry = services.add_entry(blocklist, term="spam", actor=moderator)
    services.update_entry(entry, action="discard", actor=moderator)
    services.set_entry_enabled(entry, False, actor=moderator)
    services.delete_entry(entry, actor=moderator)
    changes = list(BlocklistChange.objects.filter(object_type="entry").order_by("id"))
    assert [c.action for c in changes] == ["create", "update", "disable", "delete"]
    assert {c.actor_name for c in changes} == {"moderator1"}
    assert changes[0].before is None
    assert changes[0].after["term"] == "spam"
    assert (changes[1].before["action"], changes[1].after["action"]) == (
        "forbid",
        "discard",
    )
    assert (changes[2].before["enabled"], changes[2].after["enabled"]) == (True, False)
    assert changes[3].after is None and changes[3].before["term"] == "spam"


def test_it_bumps_the_version_on_each_change(blocklist):
    start = version_now()
    entry = services.add_entry(blocklist, term="a")
    services.update_entry(entry, note="why")
    services.update_list(blocklist, enabled=False)
    assert version_now() == start + 3


def test_the_change_history_is_append_only(blocklist):
    change = BlocklistChange.objects.first()
    with pytest.raises(PermissionError):
        change.delete()
    with pytest.raises(PermissionError):
        BlocklistChange.objects.all().delete()
    with pytest.raises(PermissionError):
        change.save()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"term": "  "}, "term", "Enter a term."),
        ({"term": "(a+)+$", "kind": "regex"}, "term", "Refused regular expression"),
        ({"term": "([", "kind": "regex"}, "term", "Refused regular expression"),
        (
            {"term": "**", "kind": "wildcard"},
            "term",
            "A wildcard pattern needs some text",
        ),
        ({"term": "a b", "kind": "user"}, "term", "A user ID has no spaces."),
        (
            {"term": "x", "action": "forbid_code"},
            "code",
            "Enter a code between 10100 and 10200.",
        ),
        (
            {"term": "x", "action": "forbid_code", "code": 99},
            "code",
            "The code must be between 10100 and 10200",
        ),
        ({"term": "x", "kind": "nope"}, "kind", "Unknown kind"),
        ({"term": "x", "action": "nope"}, "action", "Unknown action"),
        (
            {"term": "x", "action": "mask", "code": 10101},
            "code",
            "A code only goes with",
        ),
    ],
)
def test_it_refuses_bad_entries(blocklist, fields, field, message):
    with pytest.raises(ValidationError) as exc:
        services.add_entry(blocklist, **fields)
    assert message in " ".join(exc.value.message_dict[field])
    assert not BlocklistEntry.objects.exists()


def test_it_refuses_a_duplicate_ignoring_case_and_width(blocklist):
    services.add_entry(blocklist, term="Spam")
    with pytest.raises(ValidationError) as exc:
        services.add_entry(blocklist, term="ＳＰＡＭ")
    assert exc.value.message_dict == {"term": ["This list already has that entry."]}


def test_a_code_with_forbid_means_forbid_with_code(blocklist):
    entry = services.add_entry(blocklist, term="x", code=10110, info="Nope")
    assert (entry.action, entry.code, entry.info) == ("forbid_code", 10110, "Nope")


def test_it_imports_txt_and_reports_each_line(blocklist):
    services.add_entry(blocklist, term="already")
    content = "spam\n\nAlready\nspam\n# a comment\n" + "x" * 501 + "\neggs\n"
    report = services.import_entries(blocklist, content, fmt="txt")
    assert [r["term"] for r in report.added] == ["spam", "eggs"]
    assert [(r["line"], r["reason"]) for r in report.skipped] == [
        (3, "duplicate"),
        (4, "duplicate"),
    ]
    assert [(r["line"], r["reason"]) for r in report.refused] == [
        (6, "A term has at most 500 characters.")
    ]


def test_it_imports_csv_with_kind_and_action_columns(blocklist):
    content = (
        "casino,word,forbid_code,10150,No gambling\n"
        "troll-1,user\n"
        "free *coins,wildcard,mask\n"
        "(a+)+b,regex\n"
        "ok,word,explode\n"
    )
    report = services.import_entries(blocklist, content, fmt="csv")
    assert report.summary() == {"added": 3, "skipped": 0, "refused": 2}
    rows = {e.term: (e.kind, e.action, e.code, e.info) for e in blocklist.entries.all()}
    assert rows == {
        "casino": ("word", "forbid_code", 10150, "No gambling"),
        "troll-1": ("user", "forbid", None, ""),
        "free *coins": ("wildcard", "mask", None, ""),
    }
    assert report.refused[0]["line"] == 4
    assert report.refused[0]["reason"].startswith("Refused regular expression")
    assert report.refused[1]["reason"].startswith("Unknown action 'explode'")


def test_export_then_import_gives_the_same_entries(blocklist, app):
    expires = timezone.now().replace(microsecond=0) + timedelta(days=3)
    services.add_entry(blocklist, term="spam")
    services.add_entry(blocklist, term="casino", code=10150, info="No, gambling")
    services.add_entry(blocklist, term="troll", kind="user", action="discard")
    services.add_entry(
        blocklist, term="bad*word", kind="wildcard", action="mask", expires_at=expires
    )
    services.add_entry(blocklist, term=r"\d{11}", kind="regex", note="phone numbers")
    services.add_entry(blocklist, term="classic", kind="allow")
    exported = services.export_csv(services.entries_for_export([blocklist]))
    copy = services.create_list("Copy", app=app)
    report = services.import_entries(copy, exported, fmt="csv")
    assert report.summary() == {"added": 6, "skipped": 0, "refused": 0}

    def rows(lst):
        return sorted(
            (services.export_row(e) for e in lst.entries.all()), key=lambda r: r["term"]
        )

    assert rows(copy) == rows(blocklist)
    again = services.import_entries(copy, exported, fmt="csv")
    assert again.summary() == {"added": 0, "skipped": 6, "refused": 0}


def test_try_message_shows_the_answer_and_matching_entries(blocklist, app):
    entry = services.add_entry(blocklist, term="darn", action="mask")
    result = services.try_message(app, text="oh darn")
    assert result.response == {
        "ActionStatus": "OK",
        "ErrorInfo": "",
        "ErrorCode": 0,
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "oh ****"}}],
    }
    assert result.entries == [entry]
    assert not Decision.objects.exists()


# --- pages -------------------------------------------------------------------------------


def test_it_lists_blocklists_for_a_moderator(moderator, blocklist):
    response = client_for(moderator).get(reverse("webhooks:blocklist-list"))
    assert response.status_code == 200
    assert "Main" in response.content.decode()


def test_it_creates_a_list(moderator, app):
    response = client_for(moderator).post(
        reverse("webhooks:blocklist-create"),
        {"name": "App words", "app": app.pk, "note": "launch", "enabled": "on"},
    )
    created = Blocklist.objects.get(name="App words")
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "webhooks:blocklist-detail", args=[created.pk]
    )
    assert (created.app, created.note, created.enabled) == (app, "launch", True)


def test_it_keeps_typed_values_when_a_list_is_refused(moderator, blocklist):
    response = client_for(moderator).post(
        reverse("webhooks:blocklist-create"), {"name": "main", "note": "typed note"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Another list has that name." in html
    assert "typed note" in html


def test_it_adds_an_entry_inline_with_htmx(moderator, blocklist, app):
    client = client_for(moderator)
    response = client.post(
        reverse("webhooks:entry-create", args=[blocklist.pk]),
        {"kind": "word", "term": "spam", "action": "discard"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="entries">')
    assert "<html" not in html
    entry = BlocklistEntry.objects.get(term="spam")
    assert f'id="entry-{entry.pk}"' in html
    assert (entry.action, entry.added_by) == ("discard", moderator)
    # and the webhook answers with it at once
    answer = post_webhook(Client(), webhook_url(app), text_body("spam"))
    assert answer.json()["ErrorCode"] == 2


def test_it_keeps_typed_values_when_an_entry_is_refused(moderator, blocklist):
    response = client_for(moderator).post(
        reverse("webhooks:entry-create", args=[blocklist.pk]),
        {
            "kind": "regex",
            "term": "(a+)+$",
            "action": "forbid_code",
            "info": "typed info",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Refused regular expression" in html
    assert "Enter a code between 10100 and 10200." in html
    assert 'value="(a+)+$"' in html
    assert 'value="typed info"' in html
    assert not BlocklistEntry.objects.exists()


def test_it_edits_an_entry_inline(moderator, blocklist):
    entry = services.add_entry(blocklist, term="spam")
    client = client_for(moderator)
    form = client.get(
        reverse("webhooks:entry-edit", args=[entry.pk]), headers={"HX-Request": "true"}
    )
    assert 'id="edit_term"' in form.content.decode()
    response = client.post(
        reverse("webhooks:entry-edit", args=[entry.pk]),
        {"kind": "word", "term": "spam", "action": "mask", "note": "softer"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith(f'<tr id="entry-{entry.pk}"')
    entry.refresh_from_db()
    assert (entry.action, entry.note) == ("mask", "softer")


def test_it_keeps_typed_values_when_an_edit_is_refused(moderator, blocklist):
    entry = services.add_entry(blocklist, term="spam")
    response = client_for(moderator).post(
        reverse("webhooks:entry-edit", args=[entry.pk]),
        {"kind": "word", "term": "", "action": "mask", "note": "typed"},
    )
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert 'value="typed"' in response.content.decode()
    entry.refresh_from_db()
    assert entry.action == "forbid"


def test_it_disables_and_deletes_entries(moderator, blocklist):
    entry = services.add_entry(blocklist, term="spam")
    client = client_for(moderator)
    response = client.post(
        reverse("webhooks:entry-toggle", args=[entry.pk]),
        headers={"HX-Request": "true"},
    )
    assert "Enable" in response.content.decode()
    entry.refresh_from_db()
    assert entry.enabled is False
    response = client.post(
        reverse("webhooks:entry-delete", args=[entry.pk]),
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and response.content == b""
    assert not BlocklistEntry.objects.exists()


def test_it_sorts_entries_by_hits(moderator, blocklist):
    low = services.add_entry(blocklist, term="aaa-low")
    high = services.add_entry(blocklist, term="zzz-high")
    BlocklistEntry.objects.filter(pk=low.pk).update(hit_count=2)
    BlocklistEntry.objects.filter(pk=high.pk).update(hit_count=50)
    html = (
        client_for(moderator)
        .get(
            reverse("webhooks:blocklist-detail", args=[blocklist.pk]), {"sort": "hits"}
        )
        .content.decode()
    )
    assert html.index("zzz-high") < html.index("aaa-low")


def test_it_imports_a_file_and_shows_the_report(moderator, blocklist):
    upload = SimpleUploadedFile("words.csv", b"spam\nspam\n([,regex\n")
    response = client_for(moderator).post(
        reverse("webhooks:blocklist-import", args=[blocklist.pk]),
        {"file": upload, "kind": "word", "action": "forbid"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert (
        "1 added" in html and "1 skipped as duplicates" in html and "1 refused" in html
    )
    assert list(blocklist.entries.values_list("term", flat=True)) == ["spam"]


def test_it_refuses_an_import_that_is_not_text(moderator, blocklist):
    upload = SimpleUploadedFile("words.pdf", b"%PDF")
    response = client_for(moderator).post(
        reverse("webhooks:blocklist-import", args=[blocklist.pk]),
        {"file": upload, "kind": "user", "action": "discard"},
    )
    html = response.content.decode()
    assert "Upload a .txt, .csv or .jsonl file." in html
    assert '<option value="user" selected>' in html
    assert '<option value="discard" selected>' in html


def test_it_exports_a_csv_download(moderator, blocklist):
    services.add_entry(blocklist, term="spam")
    response = client_for(moderator).get(
        reverse("webhooks:blocklist-export", args=[blocklist.pk])
    )
    assert response["Content-Disposition"] == 'attachment; filename="main.csv"'
    assert response.content.decode() == (
        "term,kind,action,code,info,expires_at,note,exact,leet\nspam,word,forbid,,,,,0,0\n"
    )


def test_the_try_page_shows_the_exact_json(moderator, blocklist, app):
    services.add_entry(blocklist, term="casino", code=10150, info="No gambling")
    response = client_for(moderator).post(
        reverse("webhooks:try"),
        {"app": app.pk, "sender": "bob", "text": "casino night"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="try-result"')
    assert "&quot;ErrorCode&quot;: 10150" in html
    assert "casino" in html


def test_the_try_page_keeps_typed_values(moderator, app):
    response = client_for(moderator).post(
        reverse("webhooks:try"), {"app": app.pk, "sender": "bob", "body": "{broken"}
    )
    html = response.content.decode()
    assert "Not JSON" in html
    assert "{broken" in html
    assert 'value="bob"' in html


def test_the_decision_list_filters(moderator, blocklist, app):
    services.add_entry(blocklist, term="spam")
    services.add_entry(blocklist, term="darn", action="mask")
    for text, sender in (("spam", "bob"), ("darn", "amy"), ("hello", "cat")):
        post_webhook(Client(), webhook_url(app), text_body(text, sender=sender))
    recorder.flush()
    client = client_for(moderator)
    html = client.get(reverse("webhooks:decision-list")).content.decode()
    assert "bob" in html and "amy" in html and "cat" not in html
    assert 'data-action="allow">allow 1<' in html
    assert 'data-action="forbid">forbid 1<' in html
    html = client.get(
        reverse("webhooks:decision-list"), {"action": "mask"}
    ).content.decode()
    assert "amy" in html and "bob" not in html


def test_the_decision_list_keeps_typed_filters(moderator):
    html = (
        client_for(moderator)
        .get(
            reverse("webhooks:decision-list"), {"action": "bogus", "room": "typed-room"}
        )
        .content.decode()
    )
    assert "Select a valid choice." in html
    assert 'value="typed-room"' in html


def test_auditors_read_the_change_history(auditor, moderator, blocklist):
    services.add_entry(blocklist, term="spam", actor=moderator)
    client = client_for(auditor)
    html = client.get(reverse("webhooks:change-list")).content.decode()
    assert "moderator1" in html and "&quot;spam&quot;" in html
    html = client.get(
        reverse("webhooks:change-list"),
        {"object_type": "blocklist", "actor": "nobody-typed"},
    ).content.decode()
    assert "spam" not in html
    assert 'value="nobody-typed"' in html


def test_a_disabled_list_stops_matching(blocklist, app):
    services.add_entry(blocklist, term="spam")
    services.update_list(blocklist, enabled=False)
    assert post_webhook(Client(), webhook_url(app), text_body("spam")).json() == OK


def test_an_import_is_one_version_bump_with_a_history_row_per_entry(
    blocklist, moderator
):
    start = version_now()
    report = services.import_entries(blocklist, "a\nb\nc\n", fmt="txt", actor=moderator)
    assert version_now() == start + 1
    changes = BlocklistChange.objects.filter(object_type="entry", action="create")
    assert sorted(changes.values_list("object_id", flat=True)) == sorted(
        row["id"] for row in report.added
    )
    assert {c.actor_name for c in changes} == {"moderator1"}


def test_an_edited_term_is_checked_for_duplicates_again(blocklist):
    services.add_entry(blocklist, term="spam")
    eggs = services.add_entry(blocklist, term="eggs")
    with pytest.raises(ValidationError):
        services.update_entry(eggs, term="SPAM")
    services.update_entry(eggs, term="Ham")
    eggs.refresh_from_db()
    assert (eggs.term, eggs.term_key) == ("Ham", "ham")


def test_it_deletes_a_list_and_keeps_its_history(moderator, blocklist):
    services.add_entry(blocklist, term="spam")
    response = client_for(moderator).post(
        reverse("webhooks:blocklist-delete", args=[blocklist.pk])
    )
    assert response["Location"] == reverse("webhooks:blocklist-list")
    assert not BlocklistEntry.objects.exists()
    change = BlocklistChange.objects.get(object_type="blocklist", action="delete")
    assert change.before == {
        "name": "Main",
        "app": None,
        "enabled": True,
        "note": "",
        "entries": 1,
    }


def test_it_edits_a_list_and_keeps_typed_values(moderator, blocklist, app):
    client = client_for(moderator)
    other = services.create_list("Other", app=None)
    response = client.post(
        reverse("webhooks:blocklist-edit", args=[other.pk]),
        {"name": "MAIN", "note": "typed note", "app": app.pk},
    )
    assert response.status_code == 200
    assert "Another list has that name." in response.content.decode()
    assert "typed note" in response.content.decode()
    response = client.post(
        reverse("webhooks:blocklist-edit", args=[other.pk]),
        {"name": "Other", "note": "per app now", "app": app.pk},
    )
    assert response.status_code == 302
    other.refresh_from_db()
    assert (other.app, other.enabled, other.note) == (app, False, "per app now")
    change = BlocklistChange.objects.filter(object_id=other.pk, action="update").get()
    assert change.after["app"] == "live-app" and change.before["app"] is None
