"""Recovery: close what a dead worker or process left behind, never send twice.

A row claimed longer than SEND_CLAIM_TIMEOUT ago without an answer belonged to a
worker that died holding it: its request may have reached the provider. Text and
custom messages carry no de-duplication key, so such a row becomes ``unknown``
(final, offered for an explicit re-send), unless the app asked for at-least-once
delivery. A broadcast is released and sent again with the same Random, which the
provider de-duplicates. A running batch with waiting rows and no claim for that
long lost its runner tasks: they are queued again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from messaging import stored_text
from messaging.models import Batch, BatchStatus, Outcome, SendKind, SendRecord
from messaging.services.batches import dispatch_batch, finish_if_complete

logger = logging.getLogger(__name__)

# The ErrorInfo of rows closed here (stored in English; messaging.stored_text).
DIED_HOLDING_INFO = stored_text.DIED_HOLDING_INFO
INTERRUPTED_INFO = stored_text.INTERRUPTED_INFO


def _resendable() -> Q:
    """Rows that may be sent again after an unknown outcome."""
    return Q(kind=SendKind.BROADCAST) | Q(app__at_least_once=True)


def recover_sends() -> dict[str, list[int]]:
    """Close stale claims, re-queue lost batches and close interrupted direct sends."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.SEND_CLAIM_TIMEOUT)
    stale = SendRecord.objects.filter(
        outcome=Outcome.WAITING, batch__isnull=False, claimed_at__lt=cutoff
    )
    released = list(stale.filter(_resendable()).values_list("id", flat=True))
    SendRecord.objects.filter(
        pk__in=released, outcome=Outcome.WAITING, claimed_at__lt=cutoff
    ).update(claimed_at=None, retry_at=None)
    unknown = list(stale.exclude(_resendable()).values_list("id", flat=True))
    SendRecord.objects.filter(
        pk__in=unknown, outcome=Outcome.WAITING, claimed_at__lt=cutoff
    ).update(
        outcome=Outcome.UNKNOWN,
        retryable=False,
        error_info=DIED_HOLDING_INFO,
        updated_at=now,
    )
    # The batches of those rows lost their runner with the worker: queue new ones.
    requeued = _requeue_lost_batches(cutoff, touched=released + unknown)
    interrupted = close_interrupted_direct_sends(cutoff)
    if released or unknown or requeued or interrupted:
        logger.warning(
            "recovered sends: released %s broadcast/at-least-once claims, marked %s "
            "unknown, re-queued batches %s, closed interrupted direct sends %s",
            len(released),
            len(unknown),
            requeued,
            len(interrupted),
        )
    return {
        "released": released,
        "unknown": unknown,
        "requeued_batches": requeued,
        "interrupted": interrupted,
    }


def _requeue_lost_batches(cutoff: datetime, *, touched: list[int]) -> list[int]:
    touched_batches = set(
        SendRecord.objects.filter(pk__in=touched).values_list("batch_id", flat=True)
    )
    requeued = []
    running = dict(
        Batch.objects.filter(status=BatchStatus.RUNNING).values_list("pk", "started_at")
    )
    for pk, started_at in running.items():
        rows = SendRecord.objects.filter(batch_id=pk)
        if not rows.filter(outcome=Outcome.WAITING).exists():
            finish_if_complete(pk)
            continue
        # Activity = the latest claim (runners claim rows just before sending,
        # and probe at least every 30 s during an outage), else the start.
        last = rows.aggregate(at=Max("claimed_at"))["at"] or started_at
        if pk in touched_batches or last is None or last < cutoff:
            batch = Batch.objects.get(pk=pk)
            if batch.status == BatchStatus.RUNNING:
                dispatch_batch(batch)
                requeued.append(pk)
    return requeued


def close_interrupted_direct_sends(cutoff: datetime) -> list[int]:
    """Close direct (non-batch) sends still waiting long after they were made.

    A direct send is made and answered within one request, so one still waiting
    past the claim timeout lost its process mid-request. It is not sent again
    (text and custom messages carry no de-duplication key); its outcome becomes
    ``unknown`` with an explanation, so the log never keeps a send waiting forever.
    """
    ids = list(
        SendRecord.objects.filter(
            outcome=Outcome.WAITING, batch__isnull=True, created_at__lt=cutoff
        ).values_list("id", flat=True)
    )
    if ids:
        SendRecord.objects.filter(pk__in=ids, outcome=Outcome.WAITING).update(
            outcome=Outcome.UNKNOWN, retryable=False, error_info=INTERRUPTED_INFO
        )
    return ids
