"""Sanctions and escalation as the hot path applies them (webhooks/enforcement.py)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from tests.factories import make_app
from webhooks import enforcement, moderation
from webhooks.enforcement import escalator
from webhooks.models import BlocklistChange, Sanction

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counts():
    escalator.reset()
    yield
    escalator.reset()


def loaded(app) -> enforcement.AppModeration:
    return enforcement.load()[app.pk]


def test_a_mute_answers_in_its_room_or_app_until_it_ends(db):
    app = make_app()
    moderation.mute_sender(app, "bob", minutes=10, room_id="r1")
    moderation.mute_sender(app, "amy", minutes=0)
    state = loaded(app)
    now = time.time()
    assert enforcement.muted(state, "bob", "r1", now) is not None
    assert enforcement.muted(state, "bob", "r2", now) is None
    assert enforcement.muted(state, "amy", "anywhere", now + 10**8) is not None
    # No rebuild needed for the end: the loaded mute carries its expiry.
    assert enforcement.muted(state, "bob", "r1", now + 601) is None


def test_the_nth_hit_mutes_and_the_next_message_is_answered_muted(db, settings):
    app = make_app()
    moderation.set_escalation(app, hits=3, within_seconds=60, minutes=10)
    state = loaded(app)
    now = time.time()
    for i in range(3):
        answer, review = enforcement.after_verdict(
            state, "bob", "r1", "forbid", [1], now + i
        )
        assert answer is None and not review
    # This process applies the mute at once, before it is stored.
    assert enforcement.muted(state, "bob", "r1", now + 3) is not None
    assert enforcement.muted(state, "amy", "r1", now + 3) is None
    assert escalator.flush() == 1
    sanction = Sanction.objects.get()
    assert (sanction.sender, sanction.room_id, sanction.source) == (
        "bob",
        "",
        "escalation",
    )
    assert sanction.created_by == "escalation"
    assert BlocklistChange.objects.filter(object_type="sanction").count() == 1
    assert enforcement.muted(loaded(app), "bob", "r9", now + 5) is not None


def test_hits_outside_the_window_do_not_count(db):
    app = make_app()
    moderation.set_escalation(app, hits=2, within_seconds=10, minutes=10)
    state = loaded(app)
    now = time.time()
    enforcement.after_verdict(state, "bob", "r1", "forbid", [1], now)
    enforcement.after_verdict(state, "bob", "r1", "forbid", [1], now + 11)
    assert enforcement.muted(state, "bob", "r1", now + 11) is None
    # Allowed messages are not hits and cost nothing.
    enforcement.after_verdict(state, "bob", "r1", "allow", [], now + 12)
    assert enforcement.muted(state, "bob", "r1", now + 12) is None


def test_more_than_n_hits_answer_muted_in_any_process(db):
    """A second process (its own overlay empty) counts in the shared window."""
    app = make_app()
    moderation.set_escalation(app, hits=2, within_seconds=60, minutes=10)
    state = loaded(app)
    now = time.time()
    enforcement.after_verdict(state, "bob", "r1", "forbid", [1], now)
    enforcement.after_verdict(state, "bob", "r1", "forbid", [1], now + 1)
    escalator.overlay.clear()  # as another process would see it
    answer, _review = enforcement.after_verdict(
        state, "bob", "r1", "mask", [1], now + 2
    )
    assert answer is not None and answer.kind == "mute"


def test_flag_escalation_and_flag_entries_queue_for_review(db):
    app = make_app()
    moderation.set_escalation(
        app, hits=1, within_seconds=60, minutes=10, sanction="flag"
    )
    state = dataclasses.replace(loaded(app), review_ids=frozenset({7}))
    now = time.time()
    assert enforcement.after_verdict(state, "cat", "r", "flag", [3], now) == (
        None,
        True,
    )
    assert enforcement.after_verdict(state, "dan", "r", "allow", [], now) == (
        None,
        False,
    )
    assert enforcement.after_verdict(state, "eve", "r", "forbid", [7], now)[1] is True
    # bob's first hit imposes "flag everything": his clean messages are queued too.
    enforcement.after_verdict(state, "bob", "r", "mask", [3], now)
    assert enforcement.after_verdict(state, "bob", "r", "allow", [], now + 1) == (
        None,
        True,
    )
    assert enforcement.muted(state, "bob", "r", now + 1) is None
