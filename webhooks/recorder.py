"""Decision log, counters and hit counts, written in batches off the answer path.

The webhook only appends to memory (a lock and a list append); a background thread
writes the batch when it reaches ``WEBHOOK_RECORD_BATCH`` items or every
``WEBHOOK_RECORD_SECONDS``. Tests turn the thread off (WEBHOOK_RECORD_IN_BACKGROUND)
and call ``flush()`` themselves, so what they assert on is deterministic.
A crash of the process loses at most one unflushed batch of log rows; a database
that refuses a write gets the batch again at the next flush; answers are never delayed.
"""

from __future__ import annotations

import atexit
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    transaction,
)
from django.db.models import F

from webhooks.background import BackgroundWriter

logger = logging.getLogger(__name__)


@dataclass
class PendingDecision:
    at: float
    app_pk: int
    room_id: str
    sender: str
    action: str
    error_code: int
    entry_ids: list[int]
    text: str
    original: dict[str, Any]
    response: dict[str, Any]
    # Moderation's fields of the row (latency_us, review, sanction_id, own_send).
    extra: dict[str, Any] | None = None


@dataclass
class Batch:
    decisions: list[PendingDecision] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)  # (app_pk, minute, action)
    hits: Counter = field(default_factory=Counter)  # entry id
    rejections: Counter = field(default_factory=Counter)  # (minute, reason)

    def size(self) -> int:
        return len(self.decisions) + len(self.hits)


# The last minute asked for: every call of a minute shares one datetime.
_last_minute: tuple[float, datetime] = (-1.0, datetime.min.replace(tzinfo=UTC))


def _minute(at: float) -> datetime:
    global _last_minute
    start = at - at % 60
    last = _last_minute
    if last[0] == start:
        return last[1]
    minute = datetime.fromtimestamp(start, tz=UTC)
    _last_minute = (start, minute)
    return minute


class Recorder(BackgroundWriter):
    thread_name = "webhook-recorder"
    failure = "could not write the webhook decision log"

    def __init__(self) -> None:
        super().__init__()
        self._batch = Batch()
        # What this process has answered since it started (shown nowhere, handy in a shell).
        self.totals: Counter = Counter()

    # --- called by the hot path: memory only -------------------------------------
    def decision(
        self,
        *,
        app_pk: int,
        action: str,
        entry_ids: list[int],
        room_id: str = "",
        sender: str = "",
        error_code: int = 0,
        text: str = "",
        original: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        at = time.time()
        with self._lock:
            self._batch.counts[(app_pk, _minute(at), action)] += 1
            for entry_id in entry_ids:
                self._batch.hits[entry_id] += 1
            if action != "allow":
                self._batch.decisions.append(
                    PendingDecision(
                        at,
                        app_pk,
                        room_id[:128],
                        sender[:128],
                        action,
                        error_code,
                        entry_ids,
                        text,
                        original or {},
                        response or {},
                        extra,
                    )
                )
            self.totals[action] += 1
            size = self._batch.size()
        self._maybe_wake(size)

    def rejection(self, reason: str) -> None:
        at = time.time()
        with self._lock:
            self._batch.rejections[(_minute(at), reason)] += 1
            self.totals["rejected:" + reason] += 1
        self._maybe_wake(0)

    # --- the write --------------------------------------------------------------
    def take(self) -> Batch:
        with self._lock:
            batch, self._batch = self._batch, Batch()
        return batch

    def discard(self) -> None:
        """Forget what is pending (tests start from nothing)."""
        self.take()
        self.totals.clear()

    def flush(self) -> int:
        """Write everything pending; returns the number of decision rows written.

        When the database refuses the whole write (down, restarting), the batch goes
        back into the pending one and the next flush tries again: nothing is dropped
        because the database was away for a moment."""
        batch = self.take()
        if not (batch.decisions or batch.counts or batch.hits or batch.rejections):
            return 0
        try:
            written, dropped = write_batch(batch)
        except Exception:
            self._requeue(batch)
            raise
        if dropped:
            with self._lock:
                self.totals["dropped"] += dropped
        return written

    def _requeue(self, batch: Batch) -> None:
        with self._lock:
            pending = self._batch
            pending.decisions[:0] = batch.decisions
            pending.counts.update(batch.counts)
            pending.hits.update(batch.hits)
            pending.rejections.update(batch.rejections)
            overflow = len(pending.decisions) - settings.WEBHOOK_RECORD_MAX_PENDING
            if overflow > 0:
                # Memory is finite: past the cap the oldest rows go, and are counted.
                del pending.decisions[:overflow]
                pending.rejections[(_minute(time.time()), UNRECORDED)] += overflow
                logger.error(
                    "webhook decision log: %s rows dropped (database away)", overflow
                )


# The rejection-count reason under which a decision row that could not be stored is counted.
UNRECORDED = "unrecorded_decision"
_SURROGATES = re.compile("[\ud800-\udfff]")


def storable(value: Any) -> Any:
    """value with every string made storable in PostgreSQL text and jsonb: NUL and lone
    surrogates become U+FFFD (dict keys too). Other values are returned as they are."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        if not value.isascii() and _SURROGATES.search(value):
            value = _SURROGATES.sub("\ufffd", value)
        return value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def write_batch(batch: Batch) -> tuple[int, int]:
    """The recorder's one write path: decision rows, counts, rejection counts and hit
    counts of one batch, in one transaction. Returns (rows written, rows dropped).

    The decision rows go in one bulk insert; if the database refuses it, each row is
    inserted on its own (in a savepoint), so one broken row costs only itself: it is
    logged and counted under the ``unrecorded_decision`` reason, never silently."""
    from messaging.models import ProviderApp
    from webhooks.models import (
        BlocklistEntry,
        Decision,
        DecisionCount,
        RejectionCount,
    )

    app_pks = {d.app_pk for d in batch.decisions} | {k[0] for k in batch.counts}
    # An app deleted since the answer: its rows have nowhere to go.
    live = set(ProviderApp.objects.filter(pk__in=app_pks).values_list("pk", flat=True))
    rows = [
        Decision(
            created_at=datetime.fromtimestamp(d.at, tz=UTC),
            app_id=d.app_pk,
            room_id=storable(d.room_id),
            sender=storable(d.sender),
            action=d.action,
            error_code=d.error_code,
            entry_ids=d.entry_ids,
            text=storable(d.text),
            original=storable(d.original),
            response=storable(d.response),
            **(d.extra or {}),
        )
        for d in batch.decisions
        if d.app_pk in live
    ]
    now = datetime.now(tz=UTC)
    dropped = 0
    with transaction.atomic():
        try:
            with transaction.atomic():
                Decision.objects.bulk_create(rows)
            written = len(rows)
        except DatabaseError:
            logger.warning(
                "decision batch refused; writing %s rows one by one", len(rows)
            )
            written = 0
            for row in rows:
                try:
                    with transaction.atomic():
                        row.save(force_insert=True)
                    written += 1
                except DatabaseError:
                    dropped += 1
                    logger.exception(
                        "decision row dropped (app %s, room %r, sender %r)",
                        row.app_id,
                        row.room_id[:64],
                        row.sender[:64],
                    )
        rejections = Counter(batch.rejections)
        if dropped:
            rejections[(_minute(time.time()), UNRECORDED)] += dropped
        for (app_pk, minute, action), n in batch.counts.items():
            if app_pk in live:
                _add(DecisionCount, n, app_id=app_pk, minute=minute, action=action)
        for (minute, reason), n in rejections.items():
            _add(RejectionCount, n, minute=minute, reason=reason)
        for entry_id, n in sorted(batch.hits.items()):
            BlocklistEntry.objects.filter(pk=entry_id).update(
                hit_count=F("hit_count") + n, last_hit_at=now
            )
    return written, dropped


def _add(model: Any, n: int, **key: Any) -> None:
    """count += n for the row with this key, creating it if needed."""
    if model.objects.filter(**key).update(count=F("count") + n):
        return
    try:
        with transaction.atomic():
            model.objects.create(count=n, **key)
    except IntegrityError:
        # Another process created it between our update and insert.
        model.objects.filter(**key).update(count=F("count") + n)


recorder = Recorder()


@atexit.register
def _flush_at_exit() -> None:
    if settings.configured and settings.WEBHOOK_RECORD_IN_BACKGROUND:
        try:
            recorder.flush()
        except Exception:
            logger.exception("could not write the webhook decision log at exit")
