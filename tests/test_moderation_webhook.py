"""The webhook's answers with moderation: flag, mutes, review entries, decision time,
recent messages and LiveAdmin's own sends."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import client_for
from tests.factories import make_app
from tests.webhook_support import OK, post_webhook, text_body, webhook_url
from webhooks import dryrun, moderation, services
from webhooks.models import Decision, LatencyCount, Sanction
from webhooks.recent import RecentMessage, recent
from webhooks.recorder import recorder

pytestmark = pytest.mark.django_db

MUTED = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 1}


@pytest.fixture
def app(db):
    return make_app(name="live")


@pytest.fixture
def blocklist(app):
    return services.create_list("Live words", app=app)


def ask(app, text: str, sender: str = "viewer-1", room: str = "room-1", **kw):
    body = text_body(text, sender=sender, room=room)
    body.update(kw)
    return post_webhook(Client(), webhook_url(app), body).json()


def test_a_flagged_message_is_delivered_and_queued(app, blocklist, moderator):
    entry = services.add_entry(blocklist, term="pills", action="flag")
    assert ask(app, "cheap PILLS here", sender="bob") == OK
    assert ask(app, "hello", sender="amy") == OK
    recorder.flush()
    decision = Decision.objects.get()
    assert (decision.action, decision.review, decision.sender) == (
        "flag",
        "open",
        "bob",
    )
    assert decision.entry_ids == [entry.pk] and decision.text == "cheap PILLS here"
    assert decision.latency_us is not None and 0 < decision.latency_us < 2_000_000
    html = client_for(moderator).get(reverse("webhooks:review-queue")).content.decode()
    assert "cheap PILLS here" in html and ">pills<" in html


def test_a_forbid_entry_marked_review_also_queues(app, blocklist):
    services.add_entry(blocklist, term="scam", review=True)
    services.add_entry(blocklist, term="spam")
    assert ask(app, "a scam")["ErrorCode"] == 1
    assert ask(app, "a spam")["ErrorCode"] == 1
    recorder.flush()
    assert list(Decision.objects.order_by("id").values_list("text", "review")) == [
        ("a scam", "open"),
        ("a spam", ""),
    ]


def test_a_muted_sender_is_answered_like_a_blocked_user_until_it_ends(app):
    sanction = moderation.mute_sender(app, "bob", minutes=10, room_id="room-1")
    assert ask(app, "hello", sender="bob") == MUTED
    assert ask(app, "hello", sender="bob", room="room-2") == OK
    assert ask(app, "hello", sender="amy") == OK
    recorder.flush()
    decision = Decision.objects.get()
    assert (decision.action, decision.sanction, decision.entry_ids) == (
        "forbid",
        sanction,
        [],
    )
    # It ends by itself: the same in-memory rules, answered later, let bob through.
    from webhooks import hotpath

    built = hotpath.rules.get().built_at
    later = time.time() + 601
    reply = hotpath.answer(
        {"SdkAppid": str(app.app_id), "CallbackCommand": "Group.CallbackBeforeSendMsg"},
        json.dumps(text_body("hello", sender="bob")).encode(),
        now=later,
    )
    assert reply.payload == OK
    assert hotpath.rules.get().built_at == built  # no rebuild


def test_unmuting_lets_the_sender_speak_again(app):
    moderation.mute_sender(app, "bob", minutes=0)
    assert ask(app, "hi", sender="bob") == MUTED
    moderation.unmute_sender(app, "bob")
    assert ask(app, "hi", sender="bob") == OK


def test_escalation_mutes_after_n_hits_in_one_process(app, blocklist):
    services.add_entry(blocklist, term="darn", action="mask")
    moderation.set_escalation(app, hits=2, within_seconds=60, minutes=10)
    assert ask(app, "darn", sender="bob")["ErrorCode"] == 0
    assert ask(app, "darn", sender="bob")["ErrorCode"] == 0
    assert ask(app, "hello", sender="bob") == MUTED  # imposed at the 2nd hit
    assert ask(app, "hello", sender="amy") == OK
    recent.flush()  # the background writer stores the sanction
    sanction = Sanction.objects.get()
    assert (sanction.sender, sanction.source, sanction.room_id) == (
        "bob",
        "escalation",
        "",
    )
    assert sanction.expires_at - timezone.now() > timedelta(minutes=9)


def test_decision_times_and_recent_messages_are_recorded(app, blocklist, moderator):
    services.add_entry(blocklist, term="darn", action="mask")
    recent.clear(app.pk)
    for text in ("hello", "darn", "hi there"):
        ask(app, text)
    recorder.flush()
    recent.flush()
    assert (
        sum(LatencyCount.objects.filter(app=app).values_list("count", flat=True)) == 3
    )
    stored = list(recent.read(app.pk))
    assert [(m.text, m.action) for m in stored] == [
        ("hello", "allow"),
        ("darn", "mask"),
        ("hi there", "allow"),
    ]
    result = dryrun.dry_run(
        app, [{"kind": "word", "term": "hello", "action": "forbid"}]
    )
    assert (result.would_change, result.of) == (1, 3)
    html = client_for(moderator).get(reverse("webhooks:decision-list")).content.decode()
    assert "<td>3</td>" in html  # decisions in the last hour
    recent.clear(app.pk)


def test_without_redis_recent_messages_are_kept_in_process_up_to_the_limit(
    app, settings
):
    settings.REDIS_URL = ""
    settings.RECENT_MESSAGES_MAX = 3
    recent.clear(app.pk)
    for n in range(5):
        recent.note(app.pk, "room\x1f1", "amy", f"hi {n}", "allow", 90)
    assert recent.flush() == 5
    stored = list(recent.read(app.pk))
    assert [(m.room_id, m.text) for m in stored] == [
        ("room1", "hi 2"),  # the separator is stripped from IDs
        ("room1", "hi 3"),
        ("room1", "hi 4"),
    ]
    recent.clear(app.pk)


def test_decision_times_add_up_across_flushes_and_skip_an_unknown_app(app):
    unknown_pk = (
        app.pk + 10_000
    )  # an app deleted since the call: its counts are dropped
    for _ in range(2):  # the second flush adds to the rows the first one wrote
        for latency_us in (90, 90, 5_000):
            recent.note(app.pk, "room-1", "amy", "hi", "allow", latency_us)
        recent.note(unknown_pk, "room-1", "amy", "hi", "allow", 90)
        recent.flush()
    counts = dict(
        LatencyCount.objects.filter(app=app).values_list("bucket_us", "count")
    )
    assert sorted(counts.values()) == [2, 4]
    assert counts[max(counts)] == 2  # the 5 ms bucket
    assert not LatencyCount.objects.filter(app_id=unknown_pk).exists()
    recent.clear(app.pk)
    recent.clear(unknown_pk)


def test_the_store_can_be_switched_off(app, settings):
    settings.RECENT_MESSAGES_ENABLED = False
    recent.clear(app.pk)
    ask(app, "hello")
    recent.flush()
    assert list(recent.read(app.pk)) == []
    assert LatencyCount.objects.filter(app=app).exists()  # times are still kept


def test_own_sends_are_marked_by_operator_account(app, blocklist):
    services.add_entry(blocklist, term="darn", action="discard")
    ask(app, "darn", sender="host", Operator_Account=app.identifier)
    ask(app, "darn", sender="host", Operator_Account="someone")
    recorder.flush()
    assert list(Decision.objects.order_by("id").values_list("own_send", flat=True)) == [
        True,
        False,
    ]


def test_a_flag_draft_counts_in_a_dry_run(app):
    messages = [RecentMessage(0, "r", "u", "buy pills", "allow")] * 3
    result = dryrun.dry_run(
        app,
        [{"kind": "wildcard", "term": "buy*pills", "action": "flag"}],
        messages=messages,
    )
    assert (result.would_change, result.of) == (3, 3)
    assert result.examples[0]["would_be"] == "flag"
