"""Bulk sends: the batch's state machine.

A batch stores the message fields once and one SendRecord per room, created up
front in ``waiting``. These functions move a batch between its states (awaiting
approval, scheduled, running, paused, cancelled, done) and queue its runners;
``batch_runner`` sends the rooms, ``recovery`` closes what a dead worker left.

    awaiting_approval --approve--> running | scheduled
    scheduled --due--> running          running --all answered--> done
    running | scheduled --pause--> paused --resume--> running | scheduled
    anything not finished --cancel--> cancelled

Re-sending (failed or unknown rooms) never touches the old rows: it makes a new
batch of new rows (a final row never changes).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from liveadmin import bulk_copy
from liveadmin.roles import Role, has_role
from messaging import dispatch, stored_text
from messaging.models import (
    Batch,
    BatchStatus,
    Outcome,
    ProviderApp,
    SendKind,
    SendRecord,
)
from messaging.rooms import MAX_ROOMS
from messaging.services import sending

logger = logging.getLogger(__name__)

# The Celery task that sends a batch's rooms (messaging.tasks.run_batch).
RUN_BATCH_TASK = "messaging.tasks.run_batch"

# What a cancelled room's ErrorInfo says (stored in English; messaging.stored_text).
CANCELLED_INFO = stored_text.CANCELLED_INFO


class BatchError(Exception):
    """An action that the batch's state or the acting user does not allow."""


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
            raise BatchError(
                _("A broadcast reaches every room; it takes no room list.")
            )
        targets: list[str | None] = [None]
    else:
        if not rooms:
            raise BatchError(_("Give at least one room."))
        if len(rooms) > MAX_ROOMS:
            raise BatchError(
                _("At most %(max)s rooms per batch.") % {"max": f"{MAX_ROOMS:,}"}
            )
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
        bulk_copy.insert(
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


def dispatch_batch(batch: Batch) -> int:
    """Queue the batch's runners (after commit): BATCH_RUNNERS tasks that share
    its rows and its rate budget. Each row is claimed before it is sent, so an
    extra runner (recovery, a resume racing a worker) never sends a room twice."""
    runners = max(1, settings.BATCH_RUNNERS)
    for _runner in range(runners):
        dispatch.enqueue(RUN_BATCH_TASK, batch.pk)
    return runners


def approve(batch: Batch, *, actor: Any) -> Batch:
    """A second community manager (never the author) lets a broadcast go out."""
    if actor.pk == batch.created_by_id:
        raise BatchError(_("Another community manager must approve this broadcast."))
    if not has_role(actor, Role.MANAGER):
        raise BatchError(_("Only a community manager can approve a broadcast."))
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
            raise BatchError(_("This batch is not awaiting approval."))
        batch.refresh_from_db()
        if due:
            dispatch_batch(batch)
    logger.info("batch %s approved by user %s", batch.pk, actor.pk)
    return batch


def pause(batch: Batch, *, actor: Any, reason: str = "") -> Batch:
    """Stop taking new rooms; rooms already being sent finish."""
    reason = reason or stored_text.PAUSED_BY.format(user=actor.get_username())
    changed = Batch.objects.filter(
        pk=batch.pk, status__in=[BatchStatus.RUNNING, BatchStatus.SCHEDULED]
    ).update(status=BatchStatus.PAUSED, pause_reason=reason)
    if changed != 1:
        raise BatchError(_("Only a running or scheduled batch can be paused."))
    batch.refresh_from_db()
    return batch


def pause_automatically(batch_id: int, reason: str) -> bool:
    """The runner's pause (a failure retrying cannot fix, or a long outage)."""
    paused = Batch.objects.filter(pk=batch_id, status=BatchStatus.RUNNING).update(
        status=BatchStatus.PAUSED, pause_reason=reason
    )
    if paused:
        logger.warning("batch %s paused: %s", batch_id, reason)
    return paused == 1


def resume(batch: Batch, *, actor: Any) -> Batch:
    """Send the remaining rooms again (after a pause, manual or automatic)."""
    now = timezone.now()
    with transaction.atomic():
        changed = Batch.objects.filter(pk=batch.pk, status=BatchStatus.PAUSED).update(
            status=BatchStatus.RUNNING,
            consecutive_failures=0,
            failing_since=None,
            failing_reason="",
            pause_reason="",
            started_at=Coalesce(F("started_at"), Value(now)),
        )
        if changed != 1:
            raise BatchError(_("Only a paused batch can be resumed."))
        batch.refresh_from_db()
        if batch.scheduled_at and batch.scheduled_at > now:
            Batch.objects.filter(pk=batch.pk).update(
                status=BatchStatus.SCHEDULED, started_at=None
            )
            batch.refresh_from_db()
        else:
            # Rooms waiting for a retry time go at once.
            SendRecord.objects.filter(
                batch=batch, outcome=Outcome.WAITING, claimed_at__isnull=True
            ).update(retry_at=None)
            dispatch_batch(batch)
    logger.info("batch %s resumed by user %s", batch.pk, actor.pk)
    return batch


def rooms_not_yet_sent(batch: Batch) -> int:
    """How many rooms a cancel would stop (waiting and not on the wire)."""
    return SendRecord.objects.filter(
        batch=batch, outcome=Outcome.WAITING, claimed_at__isnull=True
    ).count()


def cancel(batch: Batch, *, actor: Any) -> Batch:
    """Stop the batch: rooms not yet sent get the outcome ``cancelled``.

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
            raise BatchError(_("This batch has already finished."))
        SendRecord.objects.filter(
            batch=batch, outcome=Outcome.WAITING, claimed_at__isnull=True
        ).update(
            outcome=Outcome.CANCELLED,
            error_info=CANCELLED_INFO.format(user=actor.get_username()),
            retryable=False,
            retry_at=None,
            updated_at=now,
        )
    batch.refresh_from_db()
    logger.info("batch %s cancelled by user %s", batch.pk, actor.pk)
    return batch


def _resend(batch: Batch, outcome: str, *, actor: Any, what: str) -> Batch:
    batch.refresh_from_db()
    if not batch.is_finished and batch.status != BatchStatus.PAUSED:
        raise BatchError(_("Wait until the batch has finished (or pause it) first."))
    rows = SendRecord.objects.filter(batch=batch, outcome=outcome)
    rooms = list(dict.fromkeys(rows.order_by("id").values_list("room_id", flat=True)))
    if not rooms:
        raise BatchError(
            _("No failed rooms to re-send.")
            if outcome == Outcome.FAILED
            else _("No unknown rooms to re-send.")
        )
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


def resend_failed(batch: Batch, *, actor: Any) -> Batch:
    """A new batch (same app, kind and message) for the rooms that failed.

    Cancelled rooms have their own outcome and are not included.
    """
    return _resend(batch, Outcome.FAILED, actor=actor, what="failed")


def resend_unknown(batch: Batch, *, actor: Any) -> Batch:
    """A new batch for the rooms whose delivery is unknown: the manager's explicit
    choice, since some of them may already have the message."""
    return _resend(batch, Outcome.UNKNOWN, actor=actor, what="unknown")


def finish_if_complete(batch_id: int) -> bool:
    """Mark a running batch done once no room is waiting."""
    if SendRecord.objects.filter(batch_id=batch_id, outcome=Outcome.WAITING).exists():
        return False
    return (
        Batch.objects.filter(pk=batch_id, status=BatchStatus.RUNNING).update(
            status=BatchStatus.DONE,
            finished_at=timezone.now(),
            failing_since=None,
            failing_reason="",
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
