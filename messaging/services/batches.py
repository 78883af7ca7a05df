"""Bulk sends: one message to many rooms, run in Celery tasks within the rate limits.

A batch stores the message fields once and one SendRecord per room, created up
front in ``waiting``; workers claim and send those rows. Progress is the count of
the batch's rows by outcome.
"""

from __future__ import annotations

import csv
import logging
import math
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Min, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from liveadmin.roles import Role, has_role
from messaging import ratelimit
from messaging.models import (
    Batch,
    BatchStatus,
    Outcome,
    ProviderApp,
    SendKind,
    SendRecord,
)
from messaging.providers.base import Outcome as ProviderOutcome
from messaging.providers.base import SendResult
from messaging.services import sending

logger = logging.getLogger(__name__)

MAX_ROOMS = 10_000
MAX_ROOM_ID_BYTES = 128
_HEADER_NAMES = {"room", "room_id", "roomid", "room id", "groupid", "group_id"}


@dataclass
class RoomList:
    """Room IDs parsed from a pasted list or an uploaded CSV/TXT file."""

    rooms: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    blank_lines: int = 0
    invalid: list[tuple[str, str]] = field(default_factory=list)

    @property
    def too_many(self) -> bool:
        return len(self.rooms) > MAX_ROOMS


def _room_error(room: str) -> str | None:
    if len(room.encode()) > MAX_ROOM_ID_BYTES:
        return f"longer than {MAX_ROOM_ID_BYTES} bytes"
    # Room IDs are printable ASCII. A space inside one line of a list is far more
    # often two IDs pasted on one line than a real room ID, so lists refuse it.
    if not all(33 <= ord(ch) <= 126 for ch in room):
        return "room IDs are printable ASCII without spaces (one room per line)"
    return None


def parse_room_ids(text: str) -> RoomList:
    """One room ID per line; for CSV input the first column (a header row is skipped).

    Keeps the first occurrence of each room in order; reports duplicates, blank
    lines and invalid IDs so the form can tell the user what was removed. More
    than MAX_ROOMS rooms is reported through ``too_many`` (the caller rejects it).
    """
    result = RoomList()
    seen: set[str] = set()
    reported_duplicates: set[str] = set()
    for index, line in enumerate(text.lstrip("\ufeff").splitlines()):
        row = next(csv.reader([line]), [])
        room = row[0].strip() if row else ""
        if not room:
            result.blank_lines += 1
            continue
        if index == 0 and room.lower() in _HEADER_NAMES:
            continue
        error = _room_error(room)
        if error:
            result.invalid.append((room, error))
            continue
        if room in seen:
            if room not in reported_duplicates:
                result.duplicates.append(room)
                reported_duplicates.add(room)
            continue
        seen.add(room)
        result.rooms.append(room)
    return result


def estimate_seconds(app: ProviderApp, kind: str, count: int) -> float:
    """How long ``count`` sends take at the app's rate budget."""
    return count / ratelimit.rate_per_second(app, kind)


def describe_estimate(app: ProviderApp, kind: str, count: int) -> str:
    """E.g. "2,000 rooms at 200/s: about 10 s"."""
    rate = ratelimit.rate_per_second(app, kind)
    seconds = math.ceil(estimate_seconds(app, kind, count))
    duration = f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} min"
    return f"{count:,} rooms at {rate:g}/s: about {duration}"


class BatchError(Exception):
    """An action that the batch's state or the acting user does not allow."""


# ---------------------------------------------------------------------------
# Creating and controlling batches (called by views and commands)


def start_batch(
    app: ProviderApp,
    kind: str,
    fields: dict,
    rooms: list[str],
    *,
    actor: Any,
    scheduled_at: datetime | None = None,
    pause_after_failures: int | None = None,
    resend_of: Batch | None = None,
) -> Batch:
    """Create a batch with one ``waiting`` SendRecord per room, and start it.

    ``fields`` are the message fields without room_id; a broadcast takes
    ``rooms=[]`` and gets a single record. Every room's request is built (and so
    validated) before anything is written; SendValidationError carries the errors.
    A broadcast of an app that requires approval waits for a second community
    manager; a future ``scheduled_at`` waits for that time (stored in UTC).
    """
    if kind == SendKind.BROADCAST:
        if rooms:
            raise BatchError("A broadcast reaches every room; it takes no room list.")
        targets: list[str | None] = [None]
    else:
        if not rooms:
            raise BatchError("Give at least one room.")
        if len(rooms) > MAX_ROOMS:
            raise BatchError(f"At most {MAX_ROOMS:,} rooms per batch.")
        targets = list(dict.fromkeys(rooms))
    now = timezone.now()
    if kind == SendKind.BROADCAST and app.broadcast_requires_approval:
        status = BatchStatus.AWAITING_APPROVAL
    elif scheduled_at is not None and scheduled_at > now:
        status = BatchStatus.SCHEDULED
    else:
        status = BatchStatus.RUNNING
    bodies = [_build(app, kind, fields, room) for room in targets]
    with transaction.atomic():
        batch = Batch.objects.create(
            app=app,
            kind=kind,
            fields={k: v for k, v in fields.items() if k != "room_id"},
            created_by=actor,
            status=status,
            scheduled_at=scheduled_at,
            room_count=len(targets),
            resend_of=resend_of,
            started_at=now if status == BatchStatus.RUNNING else None,
            **(
                {"pause_after_failures": pause_after_failures}
                if pause_after_failures is not None
                else {}
            ),
        )
        SendRecord.objects.bulk_create(
            [
                sending.new_record(app, kind, body, actor=actor, batch=batch)
                for body in bodies
            ],
            batch_size=1000,
        )
        if status == BatchStatus.RUNNING:
            dispatch_batch(batch)
    logger.info(
        "batch %s created: app=%s kind=%s rooms=%s status=%s",
        batch.pk,
        app.pk,
        kind,
        len(targets),
        status,
    )
    return batch


def _build(app: ProviderApp, kind: str, fields: dict, room: str | None) -> dict:
    values = dict(fields)
    if room is not None:
        values["room_id"] = room
    return sending.build_request(app, kind, values)


def approve(batch: Batch, *, actor: Any) -> Batch:
    """A second community manager (never the author) lets a broadcast go out."""
    if actor.pk == batch.created_by_id:
        raise BatchError("Another community manager must approve this broadcast.")
    if not has_role(actor, Role.MANAGER):
        raise BatchError("Only a community manager can approve a broadcast.")
    now = timezone.now()
    due = batch.scheduled_at is None or batch.scheduled_at <= now
    status = BatchStatus.RUNNING if due else BatchStatus.SCHEDULED
    with transaction.atomic():
        claimed = Batch.objects.filter(
            pk=batch.pk, status=BatchStatus.AWAITING_APPROVAL
        ).update(
            status=status,
            approved_by=actor,
            approved_at=now,
            started_at=now if due else None,
        )
        if claimed != 1:
            raise BatchError("This batch is not awaiting approval.")
        batch.refresh_from_db()
        if due:
            dispatch_batch(batch)
    logger.info("batch %s approved by user %s", batch.pk, actor.pk)
    return batch


def pause(batch: Batch, *, actor: Any, reason: str = "") -> Batch:
    """Stop taking new rooms; rooms already being sent finish."""
    reason = reason or f"Paused by {actor.get_username()}."
    changed = Batch.objects.filter(
        pk=batch.pk, status__in=[BatchStatus.RUNNING, BatchStatus.SCHEDULED]
    ).update(status=BatchStatus.PAUSED, pause_reason=reason)
    if changed != 1:
        raise BatchError("Only a running or scheduled batch can be paused.")
    batch.refresh_from_db()
    return batch


def resume(batch: Batch, *, actor: Any) -> Batch:
    """Send the remaining rooms again (after a pause, manual or automatic)."""
    now = timezone.now()
    with transaction.atomic():
        changed = Batch.objects.filter(pk=batch.pk, status=BatchStatus.PAUSED).update(
            status=BatchStatus.RUNNING,
            consecutive_failures=0,
            pause_reason="",
            started_at=Coalesce(F("started_at"), Value(now)),
        )
        if changed != 1:
            raise BatchError("Only a paused batch can be resumed.")
        batch.refresh_from_db()
        if batch.scheduled_at and batch.scheduled_at > now:
            Batch.objects.filter(pk=batch.pk).update(
                status=BatchStatus.SCHEDULED, started_at=None
            )
            batch.refresh_from_db()
        else:
            dispatch_batch(batch)
    logger.info("batch %s resumed by user %s", batch.pk, actor.pk)
    return batch


def cancel(batch: Batch, *, actor: Any) -> Batch:
    """Stop the batch: rooms not yet sent are marked failed (never sent).

    A room whose request is already on the wire finishes and records its answer.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = Batch.objects.filter(
            pk=batch.pk,
            status__in=[
                BatchStatus.AWAITING_APPROVAL,
                BatchStatus.SCHEDULED,
                BatchStatus.RUNNING,
                BatchStatus.PAUSED,
            ],
        ).update(status=BatchStatus.CANCELLED, cancelled_by=actor, finished_at=now)
        if changed != 1:
            raise BatchError("This batch has already finished.")
        SendRecord.objects.filter(
            batch=batch, outcome=Outcome.WAITING, claimed_at__isnull=True
        ).update(
            outcome=Outcome.FAILED,
            error_info=f"Cancelled by {actor.get_username()} before it was sent.",
            retryable=False,
            retry_at=None,
            updated_at=now,
        )
    batch.refresh_from_db()
    logger.info("batch %s cancelled by user %s", batch.pk, actor.pk)
    return batch


def resend_failed(batch: Batch, *, actor: Any) -> Batch:
    """A new batch (same app, kind and message) for the rooms that failed.

    Rooms that were cancelled before being sent are not included.
    """
    batch.refresh_from_db()
    if not batch.is_finished and batch.status != BatchStatus.PAUSED:
        raise BatchError("Wait until the batch has finished (or pause it) first.")
    failed = SendRecord.objects.filter(
        batch=batch, outcome=Outcome.FAILED, attempts__gt=0
    )
    rooms = list(dict.fromkeys(failed.order_by("id").values_list("room_id", flat=True)))
    if not rooms:
        raise BatchError("No failed rooms to re-send.")
    if batch.kind == SendKind.BROADCAST:
        rooms = []
    return start_batch(
        batch.app,
        batch.kind,
        batch.fields,
        rooms,
        actor=actor,
        pause_after_failures=batch.pause_after_failures,
        resend_of=batch,
    )


# ---------------------------------------------------------------------------
# Running batches (called by Celery tasks, or the embedded thread pool)


def dispatch_batch(batch: Batch) -> int:
    """Queue one task per chunk of the batch's waiting rooms (after commit).

    Tasks claim each row before sending it, so queueing a chunk twice (recovery,
    a resume racing a worker) never sends a room twice.
    """
    from messaging import dispatch, tasks

    ids = list(
        SendRecord.objects.filter(batch=batch, outcome=Outcome.WAITING)
        .order_by("id")
        .values_list("id", flat=True)
    )
    size = max(1, settings.BATCH_CHUNK_SIZE)
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    for chunk in chunks:
        dispatch.enqueue(tasks.send_batch_chunk, batch.pk, chunk[0], chunk[-1])
    return len(chunks)


# How often a running chunk re-reads its batch (paused or cancelled meanwhile?).
STATUS_CHECK_SECONDS = 0.2


def send_chunk(batch_id: int, first_id: int, last_id: int) -> float | None:
    """Send the waiting rooms of one chunk, one at a time, within the rate limit.

    Per room: one claim, then deliver() (its attempt and answer updates) with
    the rate limiter in front of the HTTP call. The batch's status is re-read
    after every failure and every STATUS_CHECK_SECONDS, so an automatic pause
    stops at once and a manual pause or cancel within a fraction of a second.
    Returns None when the chunk has nothing left to do, or the seconds after
    which it should run again (rooms waiting to retry after a retryable answer).
    """
    batch = Batch.objects.select_related("app").get(pk=batch_id)
    rows = SendRecord.objects.filter(
        batch_id=batch_id, id__gte=first_id, id__lte=last_id, outcome=Outcome.WAITING
    )
    while True:
        now = timezone.now()
        ready = list(
            rows.filter(claimed_at__isnull=True)
            .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
            .order_by("id")
        )
        if not ready:
            break
        checked_at = 0.0
        failures_pending = False
        for record in ready:
            if time.monotonic() - checked_at >= STATUS_CHECK_SECONDS:
                status, failures = Batch.objects.filter(pk=batch_id).values_list(
                    "status", "consecutive_failures"
                )[0]
                if status != BatchStatus.RUNNING:
                    return None
                failures_pending = failures > 0
                checked_at = time.monotonic()
            if not _claim(record, timezone.now()):
                continue  # another worker took it, or it changed meanwhile
            record.app = batch.app
            failed = _send_claimed(batch, record, reset_failures=failures_pending)
            failures_pending = failed
            if failed:
                checked_at = 0.0  # this failure may have paused the batch
    now = timezone.now()
    later = rows.filter(claimed_at__isnull=True, retry_at__gt=now).aggregate(
        at=Min("retry_at")
    )["at"]
    if later is not None:
        return max(0.05, (later - now).total_seconds())
    finish_if_complete(batch_id)
    return None


def _claim(record: SendRecord, now: datetime) -> bool:
    """Take a waiting row for this worker; False if another worker was first.

    Matching ``attempts`` too makes sure the copy in hand is current.
    """
    claimed = (
        SendRecord.objects.filter(
            pk=record.pk,
            outcome=Outcome.WAITING,
            claimed_at__isnull=True,
            attempts=record.attempts,
        )
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .update(claimed_at=now)
    )
    if claimed == 1:
        record.claimed_at = now
    return claimed == 1


def _send_claimed(batch: Batch, record: SendRecord, *, reset_failures: bool) -> bool:
    """Deliver a claimed row; True if the provider failed it (this attempt)."""
    final = record.attempts + 1 >= settings.SEND_MAX_ATTEMPTS
    result = sending.deliver(record, final_attempt=final)
    failed = result.outcome == ProviderOutcome.FAILED
    if failed:
        _note_failure(batch, result)
    elif reset_failures:
        Batch.objects.filter(pk=batch.pk, consecutive_failures__gt=0).update(
            consecutive_failures=0
        )
    if result.retryable and not final and not result.ok:
        # Still waiting: release the row and try again after a backoff (or the
        # provider's Retry-After), always well under the broker's visibility timeout.
        delay = retry_delay(record.attempts, result.retry_after)
        SendRecord.objects.filter(pk=record.pk, outcome=Outcome.WAITING).update(
            claimed_at=None, retry_at=timezone.now() + timedelta(seconds=delay)
        )
    return failed


def retry_delay(attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter (1, 2, 4 ... 60 s), or Retry-After if longer."""
    backoff = min(60.0, 2.0 ** max(0, attempts - 1)) * random.uniform(0.8, 1.2)
    return min(300.0, max(backoff, retry_after or 0.0))


def _note_failure(batch: Batch, result: SendResult) -> None:
    Batch.objects.filter(pk=batch.pk).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    code = "" if result.error_code is None else f" {result.error_code}"
    paused = Batch.objects.filter(
        pk=batch.pk,
        status=BatchStatus.RUNNING,
        pause_after_failures__gt=0,
        consecutive_failures__gte=F("pause_after_failures"),
    ).update(
        status=BatchStatus.PAUSED,
        pause_reason=(
            f"Paused automatically after {batch.pause_after_failures} provider "
            f"failures in a row. Last error{code}: "
            f"{result.explanation or result.error_info or 'no answer'}"
        ),
    )
    if paused:
        logger.warning(
            "batch %s paused after %s consecutive failures (last code %s)",
            batch.pk,
            batch.pause_after_failures,
            result.error_code,
        )


def finish_if_complete(batch_id: int) -> bool:
    """Mark a running batch done once no room is waiting."""
    if SendRecord.objects.filter(batch_id=batch_id, outcome=Outcome.WAITING).exists():
        return False
    return (
        Batch.objects.filter(pk=batch_id, status=BatchStatus.RUNNING).update(
            status=BatchStatus.DONE, finished_at=timezone.now()
        )
        == 1
    )


def start_due_batches() -> list[int]:
    """Start scheduled batches whose time has come (claimed, so each starts once)."""
    now = timezone.now()
    started = []
    due = Batch.objects.filter(
        status=BatchStatus.SCHEDULED, scheduled_at__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            claimed = Batch.objects.filter(pk=pk, status=BatchStatus.SCHEDULED).update(
                status=BatchStatus.RUNNING, started_at=now
            )
            if claimed == 1:
                dispatch_batch(Batch.objects.get(pk=pk))
                started.append(pk)
    if started:
        logger.info("started scheduled batches %s", started)
    return started


def recover_sends() -> dict[str, list[int]]:
    """Re-queue work a dead worker left behind; never re-send an answered row.

    A row claimed longer than SEND_CLAIM_TIMEOUT ago without an answer belongs to
    a worker that died mid-send: it is released and sent again with the same
    Random (the provider de-duplicates). A running batch with waiting rows and no
    activity for that long lost its queued tasks: its chunks are queued again.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.SEND_CLAIM_TIMEOUT)
    stale = list(
        SendRecord.objects.filter(
            outcome=Outcome.WAITING, batch__isnull=False, claimed_at__lt=cutoff
        ).values_list("id", "batch_id")
    )
    released = SendRecord.objects.filter(
        pk__in=[pk for pk, _ in stale], outcome=Outcome.WAITING, claimed_at__lt=cutoff
    ).update(claimed_at=None, retry_at=None)
    requeue = {batch_id for _, batch_id in stale}
    started = dict(
        Batch.objects.filter(status=BatchStatus.RUNNING).values_list("pk", "started_at")
    )
    for pk in started:
        if pk in requeue:
            continue
        rows = SendRecord.objects.filter(batch_id=pk)
        if not rows.filter(outcome=Outcome.WAITING).exists():
            finish_if_complete(pk)
            continue
        # Activity = the latest claim (claims are stamped; answers are
        # written with update(), which leaves updated_at alone), else the start.
        last = rows.aggregate(at=Max("claimed_at"))["at"] or started.get(pk)
        if last is None or last < cutoff:
            requeue.add(pk)
    requeued = []
    for pk in sorted(requeue):
        batch = Batch.objects.get(pk=pk)
        if batch.status == BatchStatus.RUNNING:
            dispatch_batch(batch)
            requeued.append(pk)
    interrupted = close_interrupted_direct_sends(cutoff)
    if released or requeued or interrupted:
        logger.warning(
            "recovered sends: released %s stale claims, re-queued batches %s, "
            "closed interrupted direct sends %s",
            released,
            requeued,
            interrupted,
        )
    return {
        "released": [pk for pk, _ in stale],
        "requeued_batches": requeued,
        "interrupted": interrupted,
    }


INTERRUPTED_INFO = (
    "The send was interrupted before the provider's answer was recorded (the process "
    "stopped mid-request). It may or may not have been delivered: check the room "
    "before sending it again."
)


def close_interrupted_direct_sends(cutoff) -> list[int]:
    """Close direct (non-batch) sends still waiting long after they were made.

    A direct send is made and answered within one request, so one still waiting past
    the claim timeout lost its process mid-request. It is not sent again (text and
    custom messages carry no de-duplication Random, so a resend could deliver twice);
    it is marked failed with an explanation, so the log never keeps a send waiting
    forever.
    """
    ids = list(
        SendRecord.objects.filter(
            outcome=Outcome.WAITING, batch__isnull=True, created_at__lt=cutoff
        ).values_list("id", flat=True)
    )
    if ids:
        SendRecord.objects.filter(pk__in=ids, outcome=Outcome.WAITING).update(
            outcome=Outcome.FAILED, retryable=False, error_info=INTERRUPTED_INFO
        )
    return ids


def wait_for_batch(batch: Batch, *, poll: float = 0.2) -> Batch:
    """Block until the batch is done, cancelled or paused (for the command line)."""
    while True:
        batch.refresh_from_db()
        if batch.is_finished or batch.status == BatchStatus.PAUSED:
            return batch
        if batch.status == BatchStatus.RUNNING and finish_if_complete(batch.pk):
            continue
        time.sleep(poll)
