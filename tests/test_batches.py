"""Bulk sends: batches, their progress, pausing, cancelling, re-sending, scheduling,
approval, recovery, the embedded background mode and the batch pages."""

from __future__ import annotations

import io
import json
import re
import socket
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from liveadmin.roles import Role
from messaging import dispatch
from messaging.models import Batch, BatchStatus, Outcome, ProviderApp, SendRecord
from messaging.rooms import parse_room_ids
from messaging.sandbox.models import SandboxApp, SandboxMessage
from messaging.services import batch_runner, batches, recovery, throughput
from messaging.services.sending import SendValidationError
from tests.conftest import client_for
from tests.factories import (
    make_app,
    make_batch,
    make_sandbox_app,
    make_send_record,
    make_user,
)
from tests.recording_server import recording_server
from tests.sandbox_support import WebhookReceiver

TEXT = {"sender": "host-1", "text": "The show starts in 5 minutes"}


def closed_port_url() -> str:
    """A local address where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def await_state(check, *, timeout: float = 20.0, what: str = "state"):
    """Poll ``check`` (a DB read) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_batch_inline(batch: Batch) -> None:
    """Run the batch's runner in this thread, as a worker would, until it stops."""
    while batch_runner.run_batch(batch.pk) is not None:
        pass


@pytest.fixture
def server():
    yield from recording_server()


# --- parsing and estimates ------------------------------------------------------


def test_it_parses_room_lists_and_reports_what_it_removed():
    parsed = parse_room_ids(
        'room_id\nroom-1\n\n room-2 \nroom-1\n"room-3",extra\nraum-ä\nlive room\n\n'
    )
    assert parsed.rooms == ["room-1", "room-2", "room-3"]
    assert parsed.duplicates == ["room-1"]
    assert parsed.blank_lines == 2
    reason = "room IDs are printable ASCII without spaces (one room per line)"
    assert parsed.invalid == [("raum-ä", reason), ("live room", reason)]
    assert not parsed.too_many


def test_it_flags_more_than_ten_thousand_rooms():
    parsed = parse_room_ids("\n".join(f"r{i}" for i in range(10_001)))
    assert len(parsed.rooms) == 10_001
    assert parsed.too_many


@pytest.mark.django_db
def test_it_estimates_the_duration_at_the_rate_budget():
    app = make_app()
    assert throughput.estimate_seconds(app, "text", 2000) == 10.0
    assert throughput.describe_estimate(app, "text", 2000) == (
        "2,000 rooms at 200/s: about 10 s"
    )
    slow = make_app(rate_limit=10)
    assert throughput.estimate_seconds(slow, "custom", 2000) == 200.0
    assert throughput.describe_estimate(slow, "custom", 2000) == (
        "2,000 rooms at 10/s: about 4 min"
    )


@pytest.mark.django_db
def test_it_estimates_from_the_apps_measured_recent_throughput(manager):
    app = make_app()
    done = make_batch(app, actor=manager, rooms=[f"r{i}" for i in range(300)])
    started = timezone.now() - timedelta(seconds=20)
    # 300 rooms in 20 s: the app reached 15/s, far below its 200/s limit.
    Batch.objects.filter(pk=done.pk).update(
        status=BatchStatus.DONE,
        started_at=started,
        finished_at=started + timedelta(seconds=20),
    )
    assert throughput.estimate_seconds(app, "text", 300) == pytest.approx(20, rel=0.01)
    assert throughput.describe_estimate(app, "text", 300) == (
        "300 rooms at about 15/s (measured on this app's recent batches; the limit "
        "is 200/s): about 20 s"
    )
    # Another kind has no measurement yet: the limit.
    assert throughput.describe_estimate(app, "custom", 300) == (
        "300 rooms at 200/s: about 2 s"
    )


# --- creating batches -----------------------------------------------------------


@pytest.mark.django_db
def test_it_creates_one_waiting_record_per_room(
    manager, django_capture_on_commit_callbacks, settings
):
    settings.BATCH_RUNNERS = 2
    app = make_app()
    with django_capture_on_commit_callbacks() as callbacks:
        batch = batches.start_batch(
            app, "text", TEXT, ["r1", "r2", "r3", "r1"], actor=manager
        )
    assert batch.status == BatchStatus.RUNNING
    assert batch.room_count == 3
    assert batch.fields == TEXT
    records = list(batch.records.order_by("id"))
    assert [r.room_id for r in records] == ["r1", "r2", "r3"]
    assert {r.outcome for r in records} == {Outcome.WAITING}
    assert records[0].request_body == {
        "RoomId": "r1",
        "Sender_Account": "host-1",
        "TextContent": "The show starts in 5 minutes",
    }
    assert all(r.user == manager and r.sender == "host-1" for r in records)
    # Two runners (which share the rows) were queued after commit.
    assert len(callbacks) == 2
    assert batch.progress() == {
        "waiting": 3,
        "ok": 0,
        "dropped": 0,
        "failed": 0,
        "unknown": 0,
        "cancelled": 0,
        "total": 3,
        "answered": 0,
        "percent": 0,
    }


@pytest.mark.django_db
def test_it_rejects_bad_fields_without_recording_anything(manager):
    app = make_app()
    with pytest.raises(SendValidationError) as caught:
        batches.start_batch(
            app, "text", {"sender": "host-1", "text": ""}, ["r1"], actor=manager
        )
    assert "text" in caught.value.errors
    assert not Batch.objects.exists()
    assert not SendRecord.objects.exists()


@pytest.mark.django_db
def test_it_rejects_rooms_for_a_broadcast_and_an_empty_room_list(manager):
    app = make_app()
    with pytest.raises(batches.BatchError):
        batches.start_batch(app, "broadcast", {"text": "hi"}, ["r1"], actor=manager)
    with pytest.raises(batches.BatchError):
        batches.start_batch(app, "text", TEXT, [], actor=manager)
    assert not Batch.objects.exists()


# --- failures, pause, resume, cancel, re-send -----------------------------------


@pytest.mark.django_db
def test_it_backs_off_through_an_outage_and_pauses_only_when_it_lasts(
    manager, settings
):
    # Nothing listens: every request is refused before it reaches a provider,
    # so it is retried (never failed) until the outage outlasts the setting.
    settings.BATCH_OUTAGE_PAUSE_SECONDS = 1
    app = make_app(base_url=closed_port_url())
    rooms = [f"room-{i}" for i in range(10)]
    batch = batches.start_batch(app, "text", TEXT, rooms, actor=manager)
    run_batch_inline(batch)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PAUSED
    assert "failing for" in batch.pause_reason
    assert "could not be reached" in batch.pause_reason
    assert batch.failing_since is not None
    records = list(batch.records.order_by("id"))
    assert {r.outcome for r in records} == {Outcome.WAITING}
    tried = [r for r in records if r.attempts]
    # It probed one room at a time, a few times, and left the others untouched.
    assert 2 <= sum(r.attempts for r in tried) <= 8
    assert len(tried) < len(rooms)
    assert all(r.retry_at is not None and r.claimed_at is None for r in tried)
    assert tried[0].error_info.startswith("ConnectError")


@pytest.mark.django_db
def test_it_claims_a_whole_group_at_once_at_full_pace(manager, server, settings):
    # A provider answering at once: after the first answer the runner reserves and
    # claims BATCH_GROUP_SIZE rooms per statement, not one or two at a time.
    settings.BATCH_GROUP_SIZE = 8
    app = make_app(base_url=server.url)
    rooms = [f"room-{i}" for i in range(40)]
    batch = batches.start_batch(app, "text", TEXT, rooms, actor=manager)
    with CaptureQueriesContext(connection) as queries:
        run_batch_inline(batch)
    claims = [
        int(m.group(1))
        for q in queries
        if "RETURNING" in q["sql"] and (m := re.search(r"LIMIT (\d+)", q["sql"]))
    ]
    assert Counter(batch.records.values_list("outcome", "attempts")) == {
        (Outcome.OK, 1): 40
    }
    # A few small claims while the window opens (it starts at one request), then
    # whole groups (less the one request that may still be out): a sixth of the
    # statements of claiming one or two rooms at a time.
    assert len(claims) <= 12
    assert sum(1 for n in claims if n >= 7) >= 4
    assert sorted(r for (r,) in batch.records.values_list("room_id")) == sorted(rooms)
    assert len(server.received) == 40


@pytest.mark.django_db
def test_it_pauses_after_consecutive_permanent_failures(manager, server):
    server.always({"ActionStatus": "FAIL", "ErrorCode": 70009, "ErrorInfo": "sig"})
    app = make_app(base_url=server.url)
    rooms = [f"room-{i}" for i in range(10)]
    batch = batches.start_batch(
        app, "text", TEXT, rooms, actor=manager, pause_after_failures=3
    )
    run_batch_inline(batch)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PAUSED
    assert batch.consecutive_failures == 3
    assert "3 provider failures in a row" in batch.pause_reason
    assert "70009" in batch.pause_reason
    # After a failure it probes one room at a time: exactly three were tried.
    assert [r.attempts for r in batch.records.order_by("id")] == [1, 1, 1] + [0] * 7
    assert len(server.received) == 3


@pytest.mark.django_db
def test_it_resumes_a_paused_batch(
    manager, server, settings, django_capture_on_commit_callbacks
):
    server.always({"ActionStatus": "FAIL", "ErrorCode": 70009, "ErrorInfo": "sig"})
    app = make_app(base_url=server.url)
    batch = batches.start_batch(
        app, "text", TEXT, ["a", "b", "c"], actor=manager, pause_after_failures=2
    )
    run_batch_inline(batch)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PAUSED
    with django_capture_on_commit_callbacks() as callbacks:
        batches.resume(batch, actor=manager)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING
    assert batch.consecutive_failures == 0
    assert batch.pause_reason == ""
    assert len(callbacks) == settings.BATCH_RUNNERS
    with pytest.raises(batches.BatchError):
        batches.resume(batch, actor=manager)


@pytest.mark.django_db
def test_it_fails_a_room_for_good_after_the_last_attempt(manager, settings, server):
    # A documented retryable code (70500, internal error) is retried up to
    # SEND_MAX_ATTEMPTS times per room, then the room fails.
    settings.SEND_MAX_ATTEMPTS = 2
    server.always({"ActionStatus": "FAIL", "ErrorCode": 70500, "ErrorInfo": "busy"})
    app = make_app(base_url=server.url)
    batch = batches.start_batch(app, "text", TEXT, ["a", "b"], actor=manager)
    run_batch_inline(batch)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE
    assert batch.finished_at is not None
    assert list(
        batch.records.order_by("id").values_list("outcome", "attempts", "retryable")
    ) == [
        (Outcome.FAILED, 2, True),
        (Outcome.FAILED, 2, True),
    ]
    assert len(server.received) == 4


@pytest.mark.django_db
def test_it_cancels_rooms_not_yet_sent(manager):
    app = make_app(base_url=closed_port_url())
    batch = batches.start_batch(app, "text", TEXT, ["a", "b", "c"], actor=manager)
    # A worker holds room "a" right now: it finishes; the others are never sent.
    first = batch.records.order_by("id").first()
    SendRecord.objects.filter(pk=first.pk).update(claimed_at=timezone.now())
    batches.cancel(batch, actor=manager)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    assert batch.cancelled_by == manager
    rows = list(
        batch.records.order_by("id").values_list(
            "room_id", "outcome", "attempts", "error_info"
        )
    )
    assert rows == [
        ("a", Outcome.WAITING, 0, ""),
        ("b", Outcome.CANCELLED, 0, "Cancelled by manager1 before it was sent."),
        ("c", Outcome.CANCELLED, 0, "Cancelled by manager1 before it was sent."),
    ]
    # A cancelled batch sends nothing more.
    assert batch_runner.run_batch(batch.pk) is None
    with pytest.raises(batches.BatchError):
        batches.cancel(batch, actor=manager)


@pytest.mark.django_db
def test_it_resends_only_the_failed_rooms(manager, server):
    server.answer({"ActionStatus": "FAIL", "ErrorCode": 100004, "ErrorInfo": "no"})
    server.answer({"ActionStatus": "FAIL", "ErrorCode": 100004, "ErrorInfo": "no"})
    app = make_app(base_url=server.url)
    batch = batches.start_batch(app, "text", TEXT, ["a", "b", "c"], actor=manager)
    # Room "b" got an answer before the others were sent.
    SendRecord.objects.filter(batch=batch, room_id="b").update(
        outcome=Outcome.OK, attempts=1
    )
    run_batch_inline(batch)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE
    again = batches.resend_failed(batch, actor=manager)
    assert again.resend_of == batch
    assert again.fields == batch.fields
    assert list(again.records.order_by("id").values_list("room_id", "outcome")) == [
        ("a", Outcome.WAITING),
        ("c", Outcome.WAITING),
    ]
    # The old batch's rows are untouched (the log is append-only).
    assert batch.records.filter(outcome=Outcome.FAILED).count() == 2


@pytest.mark.django_db
def test_it_resends_the_unknown_rooms_only_when_asked(manager):
    batch = make_batch(actor=manager, rooms=["a", "b", "c"])
    SendRecord.objects.filter(batch=batch, room_id="a").update(outcome=Outcome.OK)
    SendRecord.objects.filter(batch=batch, room_id__in=["b", "c"]).update(
        outcome=Outcome.UNKNOWN
    )
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.DONE)
    with pytest.raises(batches.BatchError, match="No failed rooms"):
        batches.resend_failed(batch, actor=manager)
    again = batches.resend_unknown(batch, actor=manager)
    assert list(again.records.order_by("id").values_list("room_id", "outcome")) == [
        ("b", Outcome.WAITING),
        ("c", Outcome.WAITING),
    ]
    assert batch.records.filter(outcome=Outcome.UNKNOWN).count() == 2


# --- scheduling -----------------------------------------------------------------


@pytest.mark.django_db
def test_it_schedules_a_batch_and_starts_it_when_due(
    manager, django_capture_on_commit_callbacks, settings
):
    settings.BATCH_RUNNERS = 1
    app = make_app()
    later = timezone.now() + timedelta(hours=2)
    with django_capture_on_commit_callbacks() as callbacks:
        batch = batches.start_batch(
            app, "text", TEXT, ["a"], actor=manager, scheduled_at=later
        )
    assert callbacks == []
    assert batch.status == BatchStatus.SCHEDULED
    assert batch.scheduled_at == later
    assert batch.started_at is None
    assert batches.start_due_batches() == []
    Batch.objects.filter(pk=batch.pk).update(
        scheduled_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks() as callbacks:
        assert batches.start_due_batches() == [batch.pk]
    assert len(callbacks) == 1
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING
    assert batch.started_at is not None
    # Claimed once: a second tick does not start it again.
    assert batches.start_due_batches() == []


@pytest.mark.django_db
def test_it_cancels_a_scheduled_batch_before_it_runs(manager):
    app = make_app()
    batch = batches.start_batch(
        app,
        "text",
        TEXT,
        ["a", "b"],
        actor=manager,
        scheduled_at=timezone.now() + timedelta(minutes=5),
    )
    batches.cancel(batch, actor=manager)
    Batch.objects.filter(pk=batch.pk).update(scheduled_at=timezone.now())
    assert batches.start_due_batches() == []
    assert set(batch.records.values_list("outcome", flat=True)) == {Outcome.CANCELLED}
    assert batch.records.filter(attempts__gt=0).count() == 0


# --- approval -------------------------------------------------------------------


@pytest.mark.django_db
def test_it_holds_a_broadcast_until_another_manager_approves(
    manager, django_capture_on_commit_callbacks, settings
):
    settings.BATCH_RUNNERS = 1
    app = make_app(broadcast_requires_approval=True)
    with django_capture_on_commit_callbacks() as callbacks:
        batch = batches.start_batch(
            app, "broadcast", {"text": "Maintenance at 2am"}, [], actor=manager
        )
    assert callbacks == []
    assert batch.status == BatchStatus.AWAITING_APPROVAL
    record = batch.records.get()
    assert record.room_id == ""
    assert record.request_body["MsgBody"] == [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "Maintenance at 2am"}}
    ]
    with pytest.raises(batches.BatchError, match="Another community manager"):
        batches.approve(batch, actor=manager)
    second = make_user("manager2", role=Role.MANAGER)
    with django_capture_on_commit_callbacks() as callbacks:
        batches.approve(batch, actor=second)
    assert len(callbacks) == 1
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING
    assert batch.approved_by == second
    with pytest.raises(batches.BatchError):
        batches.approve(batch, actor=second)


@pytest.mark.django_db
def test_it_sends_broadcasts_at_once_when_no_approval_is_required(manager):
    batch = batches.start_batch(
        make_app(), "broadcast", {"text": "hi"}, [], actor=manager
    )
    assert batch.status == BatchStatus.RUNNING


@pytest.mark.django_db
def test_it_keeps_an_approved_scheduled_broadcast_scheduled(manager):
    app = make_app(broadcast_requires_approval=True)
    later = timezone.now() + timedelta(hours=1)
    batch = batches.start_batch(
        app, "broadcast", {"text": "hi"}, [], actor=manager, scheduled_at=later
    )
    batches.approve(batch, actor=make_user("manager2", role=Role.MANAGER))
    batch.refresh_from_db()
    assert batch.status == BatchStatus.SCHEDULED


# --- recovery -------------------------------------------------------------------


@pytest.mark.django_db
def test_it_marks_rows_a_dead_worker_held_unknown_and_never_resends_them(
    manager, settings, django_capture_on_commit_callbacks
):
    settings.SEND_CLAIM_TIMEOUT = 60
    app = make_app()
    batch = batches.start_batch(app, "text", TEXT, ["a", "b", "c", "d"], actor=manager)
    a, b, c, d = batch.records.order_by("id")
    long_ago = timezone.now() - timedelta(minutes=5)
    # "a" was on the wire when its worker died; "b" got a definite answer; "c" is
    # in flight right now; "d" was never claimed.
    SendRecord.objects.filter(pk=a.pk).update(claimed_at=long_ago, attempts=1)
    SendRecord.objects.filter(pk=b.pk).update(
        outcome=Outcome.OK, claimed_at=long_ago, attempts=1
    )
    SendRecord.objects.filter(pk=c.pk).update(claimed_at=timezone.now(), attempts=1)
    with django_capture_on_commit_callbacks() as callbacks:
        result = recovery.recover_sends()
    assert result == {
        "released": [],
        "unknown": [a.pk],
        "requeued_batches": [batch.pk],
        "interrupted": [],
    }
    assert len(callbacks) == settings.BATCH_RUNNERS
    rows = {
        r.pk: (r.outcome, r.attempts, r.error_info)
        for r in SendRecord.objects.filter(batch=batch)
    }
    assert rows[a.pk] == (Outcome.UNKNOWN, 1, recovery.DIED_HOLDING_INFO)
    assert rows[b.pk][0] == Outcome.OK
    assert rows[c.pk][:2] == (Outcome.WAITING, 1)
    assert rows[d.pk][:2] == (Outcome.WAITING, 0)
    # Nothing stale any more: the next run leaves everything alone.
    assert recovery.recover_sends() == {
        "released": [],
        "unknown": [],
        "requeued_batches": [],
        "interrupted": [],
    }


@pytest.mark.django_db
def test_it_sends_a_dead_workers_broadcast_again_with_the_same_random(
    manager, settings
):
    settings.SEND_CLAIM_TIMEOUT = 60
    app = make_app()
    batch = batches.start_batch(app, "broadcast", {"text": "hi"}, [], actor=manager)
    record = batch.records.get()
    SendRecord.objects.filter(pk=record.pk).update(
        claimed_at=timezone.now() - timedelta(minutes=5), attempts=1
    )
    assert recovery.recover_sends()["released"] == [record.pk]
    again = SendRecord.objects.get(pk=record.pk)
    assert (again.outcome, again.claimed_at) == (Outcome.WAITING, None)
    assert again.request_body["Random"] == record.random


@pytest.mark.django_db
def test_it_sends_again_for_an_at_least_once_app(manager, settings):
    settings.SEND_CLAIM_TIMEOUT = 60
    app = make_app(at_least_once=True)
    batch = batches.start_batch(app, "text", TEXT, ["a"], actor=manager)
    record = batch.records.get()
    SendRecord.objects.filter(pk=record.pk).update(
        claimed_at=timezone.now() - timedelta(minutes=5), attempts=1
    )
    assert recovery.recover_sends()["released"] == [record.pk]
    assert SendRecord.objects.get(pk=record.pk).outcome == Outcome.WAITING


@pytest.mark.django_db
def test_it_requeues_a_running_batch_whose_tasks_were_lost(manager, settings):
    settings.SEND_CLAIM_TIMEOUT = 60
    batch = batches.start_batch(make_app(), "text", TEXT, ["a"], actor=manager)
    assert recovery.recover_sends()["requeued_batches"] == []
    # No claim and started five minutes ago: its queued tasks were lost.
    Batch.objects.filter(pk=batch.pk).update(
        started_at=timezone.now() - timedelta(minutes=5)
    )
    assert recovery.recover_sends()["requeued_batches"] == [batch.pk]


@pytest.mark.django_db
def test_it_closes_a_direct_send_interrupted_mid_request(manager, settings):
    settings.SEND_CLAIM_TIMEOUT = 60
    app = make_app()
    long_ago = timezone.now() - timedelta(minutes=5)
    # A direct send whose process died before the answer was written, one still in
    # flight, and a batch row (closed by the claim rule instead).
    lost = make_send_record(
        app=app, user=manager, outcome=Outcome.WAITING, created_at=long_ago
    )
    in_flight = make_send_record(app=app, user=manager, outcome=Outcome.WAITING)
    batch = batches.start_batch(app, "text", TEXT, ["a"], actor=manager)

    result = recovery.recover_sends()

    assert result["interrupted"] == [lost.pk]
    lost.refresh_from_db()
    in_flight.refresh_from_db()
    assert (lost.outcome, lost.retryable) == (Outcome.UNKNOWN, False)
    assert lost.error_info == recovery.INTERRUPTED_INFO
    assert lost.attempts == 1  # not sent again
    assert in_flight.outcome == Outcome.WAITING
    assert set(
        SendRecord.objects.filter(batch=batch).values_list("outcome", flat=True)
    ) == {Outcome.WAITING}
    assert recovery.recover_sends()["interrupted"] == []


# --- pages ----------------------------------------------------------------------


@pytest.mark.django_db
def test_it_lists_batches_with_their_counts(manager):
    batch = make_batch(actor=manager, rooms=["a", "b", "c"])
    SendRecord.objects.filter(batch=batch, room_id="a").update(outcome=Outcome.OK)
    SendRecord.objects.filter(batch=batch, room_id="b").update(outcome=Outcome.FAILED)
    response = client_for(manager).get(reverse("messaging:batch-list"))
    assert response.status_code == 200
    row = response.content.decode().split(f'id="batch-{batch.pk}"')[1]
    row = row.split("</tr>")[0]
    assert "Running" in row
    assert '<td data-count="ok">1</td>' in row
    assert '<td data-count="failed">1</td>' in row
    assert '<td data-count="waiting">1</td>' in row


@pytest.mark.django_db
def test_it_filters_the_list_by_status(manager):
    running = make_batch(actor=manager)
    cancelled = make_batch(actor=manager)
    batches.cancel(cancelled, actor=manager)
    response = client_for(manager).get(
        reverse("messaging:batch-list"), {"status": "cancelled"}
    )
    body = response.content.decode()
    assert f'id="batch-{cancelled.pk}"' in body
    assert f'id="batch-{running.pk}"' not in body


@pytest.mark.django_db
def test_it_polls_progress_until_the_batch_is_done(manager):
    batch = make_batch(actor=manager, rooms=["a", "b"])
    client = client_for(manager)
    url = reverse("messaging:batch-detail", args=[batch.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'hx-trigger="every 1s"' in page.content.decode()
    assert "<html" in page.content.decode()
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    body = fragment.content.decode()
    assert "<html" not in body
    assert 'id="batch-progress"' in body
    assert 'data-count="waiting">2<' in body
    SendRecord.objects.filter(batch=batch).update(outcome=Outcome.OK)
    batches.finish_if_complete(batch.pk)
    done = client.get(url, headers={"HX-Request": "true"})
    # 286: htmx swaps the final counts and stops polling.
    assert done.status_code == 286
    body = done.content.decode()
    assert 'data-count="ok">2<' in body
    assert 'data-status="done"' in body
    assert "hx-trigger" not in body


@pytest.mark.django_db
def test_it_cancels_from_the_page(manager):
    batch = make_batch(actor=manager, rooms=["a"])
    response = client_for(manager).post(
        reverse("messaging:batch-cancel", args=[batch.pk]), follow=True
    )
    assert response.status_code == 200
    assert "Batch cancelled" in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    assert batch.records.get().outcome == Outcome.CANCELLED


@pytest.mark.django_db
def test_it_explains_an_action_the_state_does_not_allow(manager):
    batch = make_batch(actor=manager, rooms=["a"])
    response = client_for(manager).post(
        reverse("messaging:batch-resume", args=[batch.pk]), follow=True
    )
    assert response.status_code == 200
    assert "Only a paused batch can be resumed." in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING


@pytest.mark.django_db
def test_it_pauses_and_resumes_from_the_page(manager):
    batch = make_batch(actor=manager, rooms=["a"])
    client = client_for(manager)
    client.post(reverse("messaging:batch-pause", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PAUSED
    assert batch.pause_reason == "Paused by manager1."
    client.post(reverse("messaging:batch-resume", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING


@pytest.mark.django_db
def test_it_offers_approval_only_to_another_manager(manager):
    app = make_app(broadcast_requires_approval=True)
    batch = make_batch(
        app, actor=manager, kind="broadcast", rooms=[], fields={"text": "hi"}
    )
    url = reverse("messaging:batch-detail", args=[batch.pk])
    approve = reverse("messaging:batch-approve", args=[batch.pk])
    own = client_for(manager).get(url).content.decode()
    assert "must approve this broadcast" in own
    assert approve not in own
    refused = client_for(manager).post(approve, follow=True)
    assert "Another community manager must approve" in refused.content.decode()
    second = make_user("manager2", role=Role.MANAGER)
    other = client_for(second)
    assert approve in other.get(url).content.decode()
    other.post(approve)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING
    assert batch.approved_by == second


@pytest.mark.django_db
def test_it_resends_failed_rooms_from_the_page(manager, server):
    server.always({"ActionStatus": "FAIL", "ErrorCode": 100004, "ErrorInfo": "no"})
    batch = make_batch(make_app(base_url=server.url), actor=manager, rooms=["a"])
    run_batch_inline(batch)
    response = client_for(manager).post(
        reverse("messaging:batch-resend", args=[batch.pk])
    )
    again = Batch.objects.get(resend_of=batch)
    assert response["Location"] == reverse("messaging:batch-detail", args=[again.pk])
    assert list(again.records.values_list("room_id", flat=True)) == ["a"]


# --- embedded default (no broker) -----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_runs_batches_in_background_threads_without_a_broker(settings, server):
    settings.CELERY_BROKER_URL = ""
    settings.EMBEDDED_WORKERS = 2
    server.always({"ActionStatus": "FAIL", "ErrorCode": 100004, "ErrorInfo": "no"})
    manager = make_user("manager1", role=Role.MANAGER)
    app = make_app(base_url=server.url)
    rooms = [f"room-{i}" for i in range(8)]
    try:
        batch = batches.start_batch(
            app, "text", TEXT, rooms, actor=manager, pause_after_failures=0
        )
        # start_batch returned at once; the pool's threads send the rooms.
        await_state(
            lambda: Batch.objects.filter(pk=batch.pk, status=BatchStatus.DONE).exists(),
            what="the batch to finish",
        )
    finally:
        dispatch.wait_idle()
    assert batch.progress()["failed"] == 8
    assert set(batch.records.values_list("attempts", flat=True)) == {1}


@pytest.mark.django_db(transaction=True)
def test_it_starts_scheduled_batches_from_the_embedded_scheduler(settings, server):
    settings.CELERY_BROKER_URL = ""
    settings.SEND_TICK_SECONDS = 0.05
    # The schedule was read from SEND_TICK_SECONDS when the settings loaded.
    settings.CELERY_BEAT_SCHEDULE = {
        name: entry | {"schedule": 0.05}
        if entry["task"] == "messaging.tasks.start_due_batches"
        else entry
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    }
    manager = make_user("manager1", role=Role.MANAGER)
    app = make_app(base_url=server.url)
    batch = batches.start_batch(
        app,
        "text",
        TEXT,
        ["a"],
        actor=manager,
        scheduled_at=timezone.now() + timedelta(seconds=0.3),
    )
    assert batch.status == BatchStatus.SCHEDULED
    try:
        assert dispatch.start_embedded_scheduler()
        assert not dispatch.start_embedded_scheduler()  # once per process
        await_state(
            lambda: Batch.objects.filter(pk=batch.pk, status=BatchStatus.DONE).exists(),
            what="the scheduled batch to run",
        )
    finally:
        dispatch.stop_embedded_scheduler()
        dispatch.wait_idle()
    batch.refresh_from_db()
    assert batch.started_at >= batch.scheduled_at


# --- against the sandbox over real HTTP -----------------------------------------


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


def make_sandbox_secret(app: ProviderApp) -> str:
    return SandboxApp.objects.get(app_id=app.app_id).secret


def sandbox_app(live_server, hook, rooms, **fields):
    app = make_app(base_url=f"{live_server.url}/sandbox", **fields)
    make_sandbox_app(app, rooms=tuple(rooms), callback_url=hook.url)
    return app


@pytest.mark.django_db(transaction=True)
def test_it_sends_every_room_once_in_the_background(live_server, hook, settings):
    settings.CELERY_BROKER_URL = ""
    manager = make_user("manager1", role=Role.MANAGER)
    rooms = [f"room-{i}" for i in range(12)]
    app = sandbox_app(live_server, hook, rooms)
    try:
        batch = batches.start_batch(app, "text", TEXT, rooms, actor=manager)
        await_state(
            lambda: Batch.objects.filter(pk=batch.pk, status=BatchStatus.DONE).exists(),
            what="the batch to finish",
        )
    finally:
        dispatch.wait_idle()
    assert batch.progress()["ok"] == 12
    delivered = SandboxMessage.objects.filter(room__app__app_id=app.app_id)
    assert sorted(delivered.values_list("room__room_id", flat=True)) == sorted(rooms)
    for record in batch.records.all():
        message = delivered.get(room__room_id=record.room_id)
        assert (record.msg_seq, record.request_id) == (
            message.msg_seq,
            message.request_id,
        )
        assert message.texts == ["The show starts in 5 minutes"]
        assert record.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_it_pauses_on_a_wrong_secret_and_sends_after_resume(
    live_server, hook, settings
):
    settings.CELERY_BROKER_URL = ""
    # One runner probes one room at a time after a failure: exactly two fail.
    settings.BATCH_RUNNERS = 1
    manager = make_user("manager1", role=Role.MANAGER)
    rooms = [f"room-{i}" for i in range(6)]
    app = sandbox_app(live_server, hook, rooms)
    ProviderApp.objects.filter(pk=app.pk).update(secret_key="not-the-right-secret-key")
    app.refresh_from_db()
    try:
        batch = batches.start_batch(
            app, "text", TEXT, rooms, actor=manager, pause_after_failures=2
        )
        await_state(
            lambda: Batch.objects.filter(
                pk=batch.pk, status=BatchStatus.PAUSED
            ).exists(),
            what="the batch to pause",
        )
        dispatch.wait_idle()
        failed = batch.records.filter(outcome=Outcome.FAILED)
        assert failed.count() == 2
        assert set(failed.values_list("error_code", flat=True)) == {70009}
        # A permanent error is not retried.
        assert set(failed.values_list("attempts", "retryable")) == {(1, False)}
        assert batch.records.filter(outcome=Outcome.WAITING, attempts=0).count() == 4
        # The administrator fixes the secret; a manager resumes.
        app.secret_key = make_sandbox_secret(app)
        app.save()
        batches.resume(batch, actor=manager)
        await_state(
            lambda: Batch.objects.filter(pk=batch.pk, status=BatchStatus.DONE).exists(),
            what="the batch to finish",
        )
    finally:
        dispatch.wait_idle()
    assert batch.progress()["ok"] == 4
    resent = batches.resend_failed(batch, actor=manager)
    try:
        await_state(
            lambda: Batch.objects.filter(
                pk=resent.pk, status=BatchStatus.DONE
            ).exists(),
            what="the re-send to finish",
        )
    finally:
        dispatch.wait_idle()
    assert resent.progress()["ok"] == 2
    assert SendRecord.objects.filter(outcome=Outcome.OK).count() == 6
    assert SandboxMessage.objects.count() == 6


# --- sendmsg --rooms-file -------------------------------------------------------


def run_sendmsg(*args: str) -> tuple[list[dict], int]:
    out = io.StringIO()
    try:
        call_command("sendmsg", *args, stdout=out)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return [json.loads(line) for line in out.getvalue().splitlines()], code


@pytest.mark.django_db(transaction=True)
def test_it_sends_a_rooms_file_as_a_batch_from_the_command_line(
    live_server, hook, settings, tmp_path
):
    settings.CELERY_BROKER_URL = ""
    make_user("manager1", role=Role.MANAGER)
    app = sandbox_app(live_server, hook, ["r1", "r2", "r3"])
    rooms = tmp_path / "rooms.txt"
    rooms.write_text("r1\nr2\n\nr1\nr3\n")
    try:
        lines, code = run_sendmsg(
            "text",
            "--app",
            app.name,
            "--as",
            "manager1",
            "--rooms-file",
            str(rooms),
            "--sender",
            "host-1",
            "--text",
            "Hello rooms",
        )
    finally:
        dispatch.wait_idle()
    assert code == 0
    assert [(line["room_id"], line["ok"], line["outcome"]) for line in lines[:3]] == [
        ("r1", True, "ok"),
        ("r2", True, "ok"),
        ("r3", True, "ok"),
    ]
    assert all(line["msg_seq"] == 1 and line["request_id"] for line in lines[:3])
    batch = Batch.objects.get()
    assert lines[3] == {
        "summary": True,
        "batch": batch.pk,
        "status": "done",
        "rooms": 3,
        "ok": 3,
        "failed": 0,
        "dropped": 0,
        "unknown": 0,
        "cancelled": 0,
        "waiting": 0,
        "duplicates_skipped": 1,
        "blank_lines": 1,
    }
    assert SandboxMessage.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_it_exits_non_zero_when_a_room_of_the_file_fails(
    live_server, hook, settings, tmp_path
):
    settings.CELERY_BROKER_URL = ""
    make_user("manager1", role=Role.MANAGER)
    app = sandbox_app(live_server, hook, ["r1"])
    rooms = tmp_path / "rooms.txt"
    rooms.write_text("r1\nno-such-room\n")
    try:
        lines, code = run_sendmsg(
            "custom",
            "--app",
            app.name,
            "--as",
            "manager1",
            "--rooms-file",
            str(rooms),
            "--business-id",
            "gift",
            "--data",
            '{"id": 7}',
        )
    finally:
        dispatch.wait_idle()
    assert code == 1
    assert [
        (line["room_id"], line["outcome"], line["error_code"]) for line in lines[:2]
    ] == [
        ("r1", "ok", 0),
        ("no-such-room", "failed", 100004),
    ]
    assert lines[2]["ok"] == 1 and lines[2]["failed"] == 1


@pytest.mark.django_db
def test_it_refuses_a_bad_rooms_file_and_sends_nothing(manager, tmp_path):
    app = make_app()
    rooms = tmp_path / "rooms.txt"
    rooms.write_text("r1\nraum-ä\n")
    args = [
        "text",
        "--app",
        app.name,
        "--as",
        "manager1",
        "--sender",
        "h",
        "--text",
        "x",
    ]
    with pytest.raises(CommandError) as caught:
        call_command("sendmsg", *args, "--rooms-file", str(rooms))
    assert caught.value.returncode == 2
    assert "'raum-ä'" in str(caught.value)
    with pytest.raises(CommandError) as caught:
        call_command("sendmsg", *args, "--rooms-file", str(tmp_path / "missing.txt"))
    assert caught.value.returncode == 2
    rooms.write_text("\n\n")
    with pytest.raises(CommandError, match="no room IDs"):
        call_command("sendmsg", *args, "--rooms-file", str(rooms))
    assert not SendRecord.objects.exists()


@pytest.mark.django_db
def test_it_recovers_from_the_command_line(manager, settings):
    settings.SEND_CLAIM_TIMEOUT = 60
    batch = make_batch(actor=manager, rooms=["a", "b"])
    record = batch.records.get(room_id="a")
    SendRecord.objects.filter(pk=record.pk).update(
        claimed_at=timezone.now() - timedelta(minutes=5)
    )
    due = make_batch(actor=manager, scheduled_at=timezone.now() + timedelta(hours=1))
    Batch.objects.filter(pk=due.pk).update(scheduled_at=timezone.now())
    out = io.StringIO()
    call_command("recover_sends", stdout=out)
    assert json.loads(out.getvalue()) == {
        "started_batches": [due.pk],
        "released_records": [],
        "unknown_records": [record.pk],
        "requeued_batches": [batch.pk],
    }


@pytest.mark.django_db(transaction=True)
def test_it_waits_and_retries_when_the_provider_answers_a_frequency_limit(
    live_server, hook, settings
):
    settings.CELERY_BROKER_URL = ""
    # The provider allows 1 request a second; our limiter is set far above it,
    # so the provider itself answers 100602 and the rooms wait and retry.
    settings.SANDBOX_RATE_LIMITS = {"live_engine": 1}
    settings.RATE_LIMIT_HEADROOM = -9.0
    manager = make_user("manager1", role=Role.MANAGER)
    rooms = ["a", "b", "c"]
    app = sandbox_app(live_server, hook, rooms)
    try:
        batch = batches.start_batch(app, "text", TEXT, rooms, actor=manager)
        await_state(
            lambda: Batch.objects.filter(pk=batch.pk, status=BatchStatus.DONE).exists(),
            timeout=30,
            what="the batch to finish",
        )
    finally:
        dispatch.wait_idle()
    records = list(batch.records.order_by("id"))
    assert [r.outcome for r in records] == [Outcome.OK] * 3
    # Some rooms were refused at first and sent on a later attempt, once each.
    assert max(r.attempts for r in records) > 1
    assert (
        sorted(SandboxMessage.objects.values_list("room__room_id", flat=True)) == rooms
    )
    batch.refresh_from_db()
    assert batch.consecutive_failures == 0
