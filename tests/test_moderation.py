"""Review queue, sanctions, escalation rules, dry runs, the decision log's filters and
the change history's field-by-field difference."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import client_for
from tests.factories import make_app, make_send_record
from webhooks import dryrun, moderation, services
from webhooks.models import (
    BlocklistChange,
    BlocklistEntry,
    Decision,
    EscalationRule,
    LatencyCount,
    Sanction,
)
from webhooks.recent import BUDGET_US, bucket_of, recent

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(db):
    return make_app(name="live")


@pytest.fixture
def blocklist(app):
    return services.create_list("Main", app=None)


def flagged(app, *, text: str = "buy cheap pills", sender: str = "bob", **kw):
    kw.setdefault("action", "flag")
    kw.setdefault("review", "open")
    return Decision.objects.create(
        app=app, room_id="room-1", sender=sender, text=text, **kw
    )


def run(*args: str) -> list[dict]:
    out = StringIO()
    call_command("moderation", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


# --- sanctions ------------------------------------------------------------------------


def test_it_mutes_a_sender_for_an_hour_and_records_who_and_why(app, moderator):
    before = timezone.now()
    sanction = moderation.mute_sender(
        app, "bob", minutes=60, reason="spamming links", actor=moderator
    )
    assert sanction.room_id == "" and sanction.kind == "mute"
    assert timedelta(minutes=59) < sanction.expires_at - before < timedelta(minutes=61)
    change = BlocklistChange.objects.get(object_type="sanction")
    assert change.actor_name == "moderator1" and change.action == "create"
    assert change.after["reason"] == "spamming links"
    assert change.after["sender"] == "bob"
    assert list(moderation.active_sanctions(app)) == [sanction]


def test_a_mute_ends_by_itself_at_its_time(app):
    past = timezone.now() - timedelta(hours=2)
    moderation.mute_sender(app, "bob", minutes=10, now=past)
    assert not Sanction.objects.active().exists()
    assert not Sanction.objects.get().is_active


def test_a_permanent_mute_has_no_end_and_a_new_mute_replaces_the_old(app):
    first = moderation.mute_sender(app, "bob", minutes=10)
    second = moderation.mute_sender(app, "bob", minutes=0)
    first.refresh_from_db()
    assert first.lifted_at is not None
    assert second.expires_at is None
    assert list(Sanction.objects.active()) == [second]


def test_unmuting_lifts_only_the_given_room(app, moderator):
    moderation.mute_sender(app, "bob", minutes=10, room_id="r1")
    moderation.mute_sender(app, "bob", minutes=10, room_id="r2")
    lifted = moderation.unmute_sender(app, "bob", room_id="r1", actor=moderator)
    assert [s.room_id for s in lifted] == ["r1"]
    assert [s.room_id for s in Sanction.objects.active()] == ["r2"]
    change = BlocklistChange.objects.filter(action="disable").get()
    assert change.actor_name == "moderator1"
    assert [name for name, _o, _n in change.diff] == ["lifted"]


def test_a_sanction_refuses_bad_input(app):
    with pytest.raises(Exception) as err:
        moderation.mute_sender(app, "two words", minutes=-1)
    assert set(err.value.message_dict) == {"sender", "minutes"}


# --- the review queue page -------------------------------------------------------------


def test_the_queue_shows_open_items_newest_first_with_a_nav_count(app, moderator):
    old = flagged(app, text="first message", sender="amy")
    new = flagged(app, text="second message", sender="bob")
    flagged(app, text="already seen", review="dismissed")
    html = client_for(moderator).get(reverse("webhooks:review-queue")).content.decode()
    assert html.index(f'id="review-{new.pk}"') < html.index(f'id="review-{old.pk}"')
    assert "already seen" not in html
    assert 'class="nav-count" data-count="2"' in html
    assert "live" in html and "room-1" in html


@pytest.mark.parametrize("who", ["manager", "auditor", "admin", "outsider"])
def test_the_queue_is_forbidden_to_other_roles(users, who, app):
    assert (
        client_for(users[who]).get(reverse("webhooks:review-queue")).status_code == 403
    )
    item = flagged(app)
    response = client_for(users[who]).post(
        reverse("webhooks:review-dismiss", args=[item.pk])
    )
    assert response.status_code == 403
    item.refresh_from_db()
    assert item.review == "open"


def test_the_queue_sends_anonymous_users_to_log_in(app):
    response = Client().get(reverse("webhooks:review-queue"))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_dismissing_closes_the_item_once(app, moderator):
    item = flagged(app)
    client = client_for(moderator)
    html = client.post(
        reverse("webhooks:review-dismiss", args=[item.pk]),
        headers={"HX-Request": "true"},
    ).content.decode()
    assert 'data-review="dismissed"' in html and "Dismissed." in html
    item.refresh_from_db()
    assert (item.review, item.reviewed_by) == ("dismissed", "moderator1")
    html = client.post(
        reverse("webhooks:review-dismiss", args=[item.pk]),
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "Already handled" in html


def test_muting_from_the_queue_mutes_in_the_decisions_room(app, moderator):
    item = flagged(app)
    response = client_for(moderator).post(
        reverse("webhooks:decision-mute", args=[item.pk]),
        {
            "next": "queue",
            f"m{item.pk}-minutes": "1440",
            f"m{item.pk}-scope": "room",
            f"m{item.pk}-reason": "pills",
        },
        headers={"HX-Request": "true"},
    )
    assert 'data-review="muted"' in response.content.decode()
    sanction = Sanction.objects.get()
    assert (sanction.sender, sanction.room_id, sanction.reason) == (
        "bob",
        "room-1",
        "pills",
    )
    assert (
        timedelta(hours=23)
        < sanction.expires_at - timezone.now()
        <= timedelta(hours=24)
    )


def test_adding_a_term_from_the_queue_keeps_typed_values_on_error(
    app, moderator, blocklist
):
    services.add_entry(blocklist, term="pills")
    item = flagged(app)
    url = reverse("webhooks:review-add-term", args=[item.pk])
    data = {
        f"t{item.pk}-blocklist": blocklist.pk,
        f"t{item.pk}-term": "pills",
        f"t{item.pk}-kind": "word",
        f"t{item.pk}-action": "forbid",
    }
    html = (
        client_for(moderator)
        .post(url, data, headers={"HX-Request": "true"})
        .content.decode()
    )
    assert "already has that entry" in html and 'value="pills"' in html
    item.refresh_from_db()
    assert item.review == "open"
    data[f"t{item.pk}-term"] = "cheap pills"
    html = (
        client_for(moderator)
        .post(url, data, headers={"HX-Request": "true"})
        .content.decode()
    )
    assert 'data-review="added"' in html
    assert BlocklistEntry.objects.filter(term="cheap pills").exists()


def test_the_queue_command_prints_json_lines(app):
    item = flagged(app)
    flagged(make_app(name="other"), text="elsewhere")
    [line] = run("queue", "--app", "live")
    assert line["id"] == item.pk and line["sender"] == "bob"
    assert line["text"] == "buy cheap pills" and line["action"] == "flag"


# --- sender page and decision page -------------------------------------------------------


def test_the_sender_page_lists_their_decisions_and_mutes(app, moderator):
    flagged(app, text="one", review="")
    flagged(app, text="two", sender="amy", review="")
    url = reverse("webhooks:sender-detail", args=[app.pk, "bob"])
    client = client_for(moderator)
    html = client.get(url).content.decode()
    assert "one" in html and ">two<" not in html
    response = client.post(url, {"minutes": "0", "scope": "app", "reason": "abuse"})
    assert response.status_code == 302
    sanction = Sanction.objects.get()
    assert sanction.expires_at is None and sanction.created_by == "moderator1"
    html = client.get(url).content.decode()
    assert "permanent" in html and "abuse" in html


def test_the_sender_page_keeps_typed_values(app, moderator):
    url = reverse("webhooks:sender-detail", args=[app.pk, "bob"])
    html = (
        client_for(moderator)
        .post(
            url,
            {"minutes": "60", "scope": "room", "room_id": "", "reason": "kept reason"},
        )
        .content.decode()
    )
    assert "Enter the room" in html and 'value="kept reason"' in html
    assert not Sanction.objects.exists()


def test_the_sender_page_is_for_moderators(users, app):
    url = reverse("webhooks:sender-detail", args=[app.pk, "bob"])
    for who in ("manager", "auditor", "outsider"):
        assert client_for(users[who]).get(url).status_code == 403
    assert Client().get(url).status_code == 302


def test_lifting_a_mute_from_the_sender_page(app, moderator):
    sanction = moderation.mute_sender(app, "bob", minutes=10)
    client_for(moderator).post(reverse("webhooks:sanction-lift", args=[sanction.pk]))
    sanction.refresh_from_db()
    assert sanction.lifted_by == "moderator1" and not sanction.is_active


# --- escalation -------------------------------------------------------------------------


def test_the_escalation_command_sets_and_replaces_the_rule(app):
    [line] = run(
        "escalation", "--app", "live", "--hits", "3", "--within", "60", "--mute", "10"
    )
    rule = EscalationRule.objects.get()
    assert line == {
        "id": rule.pk,
        "app": "live",
        "hits": 3,
        "within_seconds": 60,
        "sanction": "mute",
        "minutes": 10,
        "room_only": False,
        "enabled": True,
    }
    run("escalation", "--app", "live", "--hits", "5", "--within", "30", "--mute", "0")
    rule.refresh_from_db()
    assert (rule.hits, rule.within_seconds, rule.minutes) == (5, 30, 0)
    change = BlocklistChange.objects.filter(
        object_type="escalation", action="update"
    ).get()
    assert [name for name, _o, _n in change.diff] == [
        "hits",
        "minutes",
        "within_seconds",
    ]


def test_the_escalation_page_keeps_typed_values(app, moderator):
    html = (
        client_for(moderator)
        .post(
            reverse("webhooks:escalation-list"),
            {
                "app": app.pk,
                "hits": "0",
                "within_seconds": "45",
                "sanction": "mute",
                "minutes": "10",
            },
        )
        .content.decode()
    )
    assert 'value="45"' in html and "greater than or equal to 1" in html
    assert not EscalationRule.objects.exists()


def test_the_escalation_page_is_for_moderators(users):
    url = reverse("webhooks:escalation-list")
    assert client_for(users["auditor"]).get(url).status_code == 403
    assert client_for(users["moderator"]).get(url).status_code == 200


# --- commands -----------------------------------------------------------------------------


def test_mute_and_unmute_commands(app):
    [line] = run(
        "mute", "--app", "live", "--user", "bob", "--room", "r1", "--minutes", "10"
    )
    assert line["muted"] is True and line["room"] == "r1" and line["sender"] == "bob"
    [line] = run("unmute", "--app", "live", "--user", "bob", "--room", "r1")
    assert line["unmuted"] is True
    with pytest.raises(CommandError) as err:
        run("unmute", "--app", "live", "--user", "bob")
    assert err.value.returncode == 1
    with pytest.raises(CommandError) as err:
        run("mute", "--app", "nope", "--user", "bob", "--minutes", "10")
    assert err.value.returncode == 2
    with pytest.raises(CommandError) as err:
        run("mute", "--app", "live", "--user", "bob", "--minutes", "-5")
    assert err.value.returncode == 2


def test_blocklist_add_takes_the_flag_action(app):
    out = StringIO()
    call_command(
        "blocklist",
        "add",
        "--app",
        "live",
        "--term",
        "pills",
        "--action",
        "flag",
        stdout=out,
    )
    assert json.loads(out.getvalue())["action"] == "flag"
    assert BlocklistEntry.objects.get().action == "flag"


# --- dry runs ------------------------------------------------------------------------------


def store(app, *messages: tuple[str, str, str]) -> None:
    for sender, text, action in messages:
        recent.note(app.pk, "room-1", sender, text, action, 300)
    recent.flush()


def test_the_dryrun_command_counts_what_a_draft_would_change(app):
    recent.clear(app.pk)
    store(
        app,
        ("amy", "cheap pills here", "allow"),
        ("bob", "PILLS!!", "allow"),
        ("cat", "hello", "allow"),
        ("dan", "pills again", "forbid"),  # already forbidden: no change
    )
    [line] = run("dryrun", "--app", "live", "--term", "pills", "--action", "discard")
    assert (line["would_change"], line["of"]) == (2, 4)
    assert [x["sender"] for x in line["examples"]] == ["amy", "bob"]
    assert line["examples"][0]["would_be"] == "discard"
    assert not BlocklistEntry.objects.exists()
    recent.clear(app.pk)


def test_an_allow_draft_counts_messages_it_would_let_through(app, blocklist):
    services.add_entry(blocklist, term="ass")
    recent.clear(app.pk)
    store(app, ("amy", "a classic", "forbid"), ("bob", "ass", "forbid"))
    result = dryrun.dry_run(
        app, [{"kind": "allow", "term": "classic", "action": "forbid"}]
    )
    assert (result.would_change, result.of) == (1, 2)
    assert result.examples[0]["would_be"] == "allow"
    recent.clear(app.pk)


def test_the_entry_form_tests_a_draft_against_recent_traffic(app, moderator):
    own = services.create_list("Own", app=app)
    recent.clear(app.pk)
    store(app, ("amy", "free money", "allow"), ("bob", "hi", "allow"))
    html = (
        client_for(moderator)
        .post(
            reverse("webhooks:entry-dryrun", args=[own.pk]),
            {"kind": "word", "term": "money", "action": "mask"},
            headers={"HX-Request": "true"},
        )
        .content.decode()
    )
    assert '<strong class="dryrun-count">1</strong>' in html
    assert '<span class="dryrun-of">2</span>' in html
    assert "free money" in html
    assert not own.entries.exists()
    recent.clear(app.pk)


def test_recent_messages_are_purged_after_the_window(app, settings):
    recent.clear(app.pk)
    store(app, ("amy", "one", "allow"))
    assert len(list(recent.read(app.pk))) == 1
    assert (
        recent.purge(
            now=timezone.now().timestamp() + settings.RECENT_MESSAGES_SECONDS + 5
        )
        == 1
    )
    assert list(recent.read(app.pk)) == []


# --- latency -------------------------------------------------------------------------------


def test_latency_buckets_never_straddle_the_budget():
    assert bucket_of(BUDGET_US) == BUDGET_US
    assert bucket_of(BUDGET_US - 1) <= BUDGET_US
    assert bucket_of(BUDGET_US + 1) > BUDGET_US
    assert 100 <= bucket_of(100) < 111


def test_the_decision_page_shows_percentiles_and_the_count_over_budget(app, moderator):
    for latency in [200] * 98 + [5000, 3_000_000]:
        recent.note(app.pk, "r", "u", "hi", "allow", latency)
    recent.flush()
    assert sum(LatencyCount.objects.values_list("count", flat=True)) == 100
    html = client_for(moderator).get(reverse("webhooks:decision-list")).content.decode()
    row = html[html.index('data-window="1"') :]
    row = row[: row.index("</tr>")]
    assert f"≤ {bucket_of(200)} µs" in row
    assert f"≤ {bucket_of(5000)} µs" in row  # p99
    assert 'data-over-budget="1"' in row


# --- the decision log -----------------------------------------------------------------------


def test_the_decision_log_filters_by_time_range_and_entry(app, moderator):
    now = timezone.now()
    # Written two days ago (a decision's time never changes afterwards).
    flagged(
        app,
        text="old one",
        review="",
        entry_ids=[12],
        created_at=now - timedelta(days=2),
    )
    flagged(app, text="new one", review="", entry_ids=[3, 120])
    client = client_for(moderator)
    url = reverse("webhooks:decision-list")
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    html = client.get(url, {"since": since}).content.decode()
    assert "new one" in html and "old one" not in html
    html = client.get(url, {"entry": "12"}).content.decode()
    assert "old one" in html and "new one" not in html
    html = client.get(url, {"entry": "120"}).content.decode()
    assert "new one" in html and "old one" not in html
    html = client.get(
        url, {"since": since, "until": "2000-01-01T00:00"}
    ).content.decode()
    assert "is before" in html and 'value="2000-01-01T00:00"' in html


# --- point 7 ----------------------------------------------------------------------------------


def test_try_a_message_shows_an_allow_entry_as_allow(app, moderator, blocklist):
    services.add_entry(blocklist, term="ass", action="mask")
    allow = services.add_entry(blocklist, term="classic", kind="allow", action="mask")
    html = (
        client_for(moderator)
        .post(
            reverse("webhooks:try"),
            {"app": app.pk, "sender": "bob", "text": "a classic"},
        )
        .content.decode()
    )
    cell = html[html.index(f'data-entry-action="{allow.pk}"') :]
    cell = cell[: cell.index("</td>")]
    assert "allow" in cell and "Mask" not in cell


def test_the_change_history_shows_each_changed_field(moderator, auditor, blocklist):
    entry = services.add_entry(blocklist, term="spam", actor=moderator)
    services.update_entry(entry, action="discard", note="too strict", actor=moderator)
    change = BlocklistChange.objects.filter(action="update").get()
    assert change.diff == [
        ("action", '"forbid"', '"discard"'),
        ("note", '""', '"too strict"'),
    ]
    html = client_for(auditor).get(reverse("webhooks:change-list")).content.decode()
    row = html[html.index(f'id="change-{change.pk}"') :]
    row = row[: row.index("</table>")]
    assert 'data-field="action"' in row and 'data-field="note"' in row
    assert 'data-field="term"' not in row


# --- LiveAdmin's own sends ---------------------------------------------------------------------


def test_an_own_send_and_its_decision_link_both_ways(app, manager, moderator, auditor):
    record = make_send_record(
        app=app,
        user=manager,
        room_id="room-1",
        sender="host",
        request_body={
            "RoomId": "room-1",
            "Sender_Account": "host",
            "TextContent": "hi darn",
        },
    )
    other = Decision.objects.create(  # same text from a viewer: not ours
        app=app, room_id="room-1", sender="host", text="hi darn", action="mask"
    )
    ours = Decision.objects.create(
        app=app,
        room_id="room-1",
        sender="host",
        text="hi darn",
        action="mask",
        own_send=True,
    )
    html = (
        client_for(manager)
        .get(reverse("messaging:audit-detail", args=[record.pk]))
        .content.decode()
    )
    assert "masked by the webhook" in html
    assert reverse("webhooks:decision-detail", args=[ours.pk]) in html
    ours.refresh_from_db()
    other.refresh_from_db()
    assert ours.send_record == record and other.send_record is None
    html = (
        client_for(moderator)
        .get(reverse("webhooks:decision-detail", args=[ours.pk]))
        .content.decode()
    )
    # Moderators do not read the send log: the send is named, not linked.
    assert f"send #{record.pk} by" in html
    assert reverse("messaging:audit-detail", args=[record.pk]) not in html
    html = (
        client_for(auditor)
        .get(reverse("webhooks:decision-detail", args=[ours.pk]))
        .content.decode()
    )
    assert reverse("messaging:audit-detail", args=[record.pk]) in html
    assert "Mute the sender" not in html
    fragment = (
        client_for(manager)
        .get(reverse("webhooks:send-decision", args=[record.pk]))
        .content.decode()
    )
    assert 'data-webhook-action="mask"' in fragment
    assert (
        client_for(moderator)
        .get(reverse("webhooks:send-decision", args=[record.pk]))
        .status_code
        == 403
    )


def test_a_decision_finds_its_send_from_its_side(app):
    record = make_send_record(
        app=app,
        room_id="room-9",
        sender="",
        request_body={"RoomId": "room-9", "BusinessId": "gift", "Data": 'say "hi"'},
    )
    decision = Decision.objects.create(
        app=app,
        room_id="room-9",
        sender=app.identifier,
        text='{"BusinessId":"gift","Data":"say \\"hi\\""}',
        action="discard",
        own_send=True,
    )
    assert moderation.send_for_decision(decision) == record
    assert Decision.objects.get(send_record=record) == decision


@pytest.mark.parametrize(
    "kind,term",
    [
        ("word", "pills"),
        ("wildcard", "cheap*pills"),
        ("regex", r"pi+lls"),
        ("user", "u3"),
    ],
)
def test_the_dryrun_prefilter_finds_what_the_matcher_finds(app, kind, term):
    from webhooks.matching import RuleSet
    from webhooks.recent import RecentMessage

    texts = [
        "ＰＩＬＬＳ",
        "p.i.l.l.s",
        "spills",
        "cheap, cheap PILLS",
        "Piiills",
        "hello",
        "貼圖pills",
    ]
    messages = [RecentMessage(0, "r", f"u{i}", t, "allow") for i, t in enumerate(texts)]
    draft = {"kind": kind, "term": term, "action": "forbid"}
    exact = RuleSet.compile(dryrun.draft_rules([draft]))
    expected = sum(
        exact.check(
            from_account=m.sender,
            msg_body=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": m.text}}],
            cloud_custom_data=None,
        ).action
        != "allow"
        for m in messages
    )
    assert expected > 0
    assert dryrun.dry_run(app, [draft], messages=messages).would_change == expected


def test_an_import_file_is_tested_before_it_is_imported(app, moderator):
    from django.core.files.uploadedfile import SimpleUploadedFile

    own = services.create_list("Own", app=app)
    recent.clear(app.pk)
    store(
        app,
        ("amy", "free money", "allow"),
        ("bob", "cheap pills", "allow"),
        ("cat", "hi", "allow"),
    )
    upload = SimpleUploadedFile("words.txt", b"money\npills\n")
    html = (
        client_for(moderator)
        .post(
            reverse("webhooks:import-dryrun", args=[own.pk]),
            {"file": upload, "kind": "word", "action": "forbid"},
            headers={"HX-Request": "true"},
        )
        .content.decode()
    )
    assert '<strong class="dryrun-count">2</strong>' in html
    assert not own.entries.exists()
    html = (
        client_for(moderator)
        .post(
            reverse("webhooks:import-dryrun", args=[own.pk]),
            {
                "file": SimpleUploadedFile("words.pdf", b"x"),
                "kind": "word",
                "action": "forbid",
            },
        )
        .content.decode()
    )
    assert "Upload a .txt" in html
    recent.clear(app.pk)


def test_an_entry_can_also_queue_for_review(moderator, blocklist):
    client = client_for(moderator)
    client.post(
        reverse("webhooks:entry-create", args=[blocklist.pk]),
        {"kind": "word", "term": "scam", "action": "forbid", "review": "on"},
    )
    entry = BlocklistEntry.objects.get(term="scam")
    assert entry.review is True
    services.update_entry(entry, review=False, actor=moderator)
    change = BlocklistChange.objects.filter(action="update").get()
    assert change.diff == [("review", "true", "false")]
    out = StringIO()
    call_command(
        "blocklist", "add", "--all-apps", "--term", "fraud", "--review", stdout=out
    )
    assert BlocklistEntry.objects.get(term="fraud").review is True


def test_the_decision_export_takes_the_time_range_and_entry_filters(app, auditor):
    now = timezone.now()
    old = flagged(
        app,
        text="old one",
        review="",
        entry_ids=[12],
        created_at=now - timedelta(days=2),
    )
    new = flagged(app, text="new one", review="", entry_ids=[3])
    url = reverse("webhooks:decision-export")
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    client = client_for(auditor)
    response = client.get(url, {"format": "jsonl", "since": since})
    lines = [
        json.loads(x)
        for x in b"".join(response.streaming_content).decode().splitlines()
    ]
    assert [x["id"] for x in lines] == [new.pk]
    response = client.get(url, {"format": "jsonl", "entry": "12"})
    lines = [
        json.loads(x)
        for x in b"".join(response.streaming_content).decode().splitlines()
    ]
    assert [x["id"] for x in lines] == [old.pk]
