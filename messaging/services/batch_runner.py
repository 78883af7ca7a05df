"""Sending a batch's rooms at the provider's limit: the loop a runner task runs.

One loop per runner task (BATCH_RUNNERS per batch, on any worker):

1. reserve the next few sends from the shared rate bucket (one Redis call),
2. claim that many ready rows in one UPDATE just before they go out (``claimed_at``,
   ``attempts + 1``): a claimed row is on the wire, so a dead worker leaves at
   most its in-flight rows behind,
3. hand each row to a sender thread at its reserved slot (HTTP waits on the
   network; one pooled keep-alive client per process),
4. write the answers in bulk, one statement for many rows.

Failures (DESIGN.md "Delivery semantics"):

- a request that surely did not reach the provider (no connection) or got a
  documented retryable code is released with a retry time; the batch backs off,
  then probes with one request and doubles the window on each success (slow
  start) until it is back at full rate. Network errors are retried for as long
  as the outage lasts; after BATCH_OUTAGE_PAUSE_SECONDS the batch pauses with
  the reason on its page.
- a request that may have reached the provider (read timeout, connection lost,
  an unreadable answer) ends ``unknown``; only a broadcast (the provider drops a
  repeated Random) or an at-least-once app sends it again.
- a permanent failure fails the room; ``pause_after_failures`` of them in a row
  pause the batch (a wrong key, a disabled app, the console switch off).
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min
from django.utils import timezone

from messaging import ratelimit, stored_text
from messaging.models import Batch, BatchStatus, Outcome, SendKind, SendRecord
from messaging.providers import send as provider_send
from messaging.providers.base import Credentials, SendResult
from messaging.providers.base import Outcome as ProviderOutcome
from messaging.services.batches import finish_if_complete, pause_automatically
from messaging.services.sending import credentials_for

logger = logging.getLogger(__name__)

# How often the loop re-reads its batch (paused or cancelled meanwhile?).
STATUS_CHECK_SECONDS = 0.25
# A runner task returns after this long and queues its continuation, so tasks stay
# short (under the broker's visibility timeout) and batches share the workers.
RUN_SECONDS = 120.0
# A send later than this after its reserved slot is not made (see send_group): at
# 5% headroom (190/s paced) a 25 ms delay keeps any second under 195, which
# leaves room for the network's own jitter (measured: at 40 ms a loaded machine
# showed 201 in one second at the stand-in).
LATE_SECONDS = 0.025
# Answers are written in groups of this many rows, or after this long.
FLUSH_ROWS = 16
FLUSH_SECONDS = 0.2
# Rows waiting for a retry sooner than this are waited for in the task.
WAIT_IN_TASK_SECONDS = 5.0
# Back-off while transient failures last: a quarter of the outage so far, between
# these bounds, so a short outage is probed often and a long one rarely.
MIN_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 15.0


@dataclass
class Flight:
    """A claimed row on its way to the provider."""

    pk: int
    attempts: int
    body: dict
    claimed_at: datetime


# --- the sender threads (one pool per process) -------------------------------------------

_senders: ThreadPoolExecutor | None = None
_senders_lock = threading.Lock()


def _sender_pool() -> ThreadPoolExecutor:
    global _senders
    with _senders_lock:
        if _senders is None:
            _senders = ThreadPoolExecutor(
                max_workers=max(1, settings.BATCH_IN_FLIGHT),
                thread_name_prefix="liveadmin-http",
            )
        return _senders


def _forget_senders() -> None:
    # A forked worker child must not use the parent's threads.
    global _senders
    _senders = None


os.register_at_fork(after_in_child=_forget_senders)


def run_batch(batch_id: int) -> float | None:
    """Send the batch's ready rooms until none is left, the batch stops running or
    RUN_SECONDS pass.

    Returns None when this runner has nothing more to do, or the seconds after
    which a continuation task should run (rows waiting for a later retry, or the
    time slice used up).
    """
    batch = Batch.objects.select_related("app").filter(pk=batch_id).first()
    if batch is None or batch.status != BatchStatus.RUNNING:
        return None
    return _Runner(batch).run()


class _Runner:
    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.app = batch.app
        self.kind = batch.kind
        self.credentials: Credentials = credentials_for(self.app)
        # A broadcast carries its Random (the provider drops a repeat); an
        # at-least-once app prefers a duplicate to a gap.
        self.resend_unknown = self.kind == SendKind.BROADCAST or self.app.at_least_once
        self.window = 1  # requests in flight allowed now (slow start)
        self.max_window = max(1, settings.BATCH_IN_FLIGHT)
        # Requests handed to the sender threads, and answers back from them.
        self.submitted = 0
        self.received = 0
        self.noticed = 0  # answers the loop has woken up for
        # A sender thread saw a failure: the rest of the current group is not sent.
        self.trouble = False
        self.answers = threading.Condition()
        self.done: queue.SimpleQueue[tuple[Flight, SendResult]] = queue.SimpleQueue()
        self.backoff_until = 0.0
        self.failing_since: datetime | None = batch.failing_since
        self.checked_at = 0.0
        self.failures_noted = batch.consecutive_failures > 0
        self.statement = _AnswerStatement()
        self.claim_statement = _ClaimStatement()
        self.stopped = False  # this runner paused the batch
        self.rate = ratelimit.pace_for(ratelimit.rate_per_second(self.app, self.kind))
        self.latency = 0.05  # seconds, until answers say otherwise
        self.flushed_at = time.monotonic()

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> float | None:
        deadline = time.monotonic() + RUN_SECONDS
        again: float | None = None
        try:
            while True:
                self.flush()
                if not self.still_running():
                    break
                now = time.monotonic()
                if now < self.backoff_until:
                    self.wait_for_answers(
                        min(STATUS_CHECK_SECONDS, self.backoff_until - now)
                    )
                    continue
                if now > deadline:
                    again = 0.0
                    break
                free = self.window - self.in_flight
                if free <= 0:
                    self.wait_for_answers(STATUS_CHECK_SECONDS)
                    continue
                if not self.send_group(self.group_size(free)):
                    # No row ready: write what came back (it may free rows for a
                    # retry), then wait for the rest or for the next retry time.
                    self.flush(force=True)
                    if self.in_flight:
                        self.wait_for_answers(STATUS_CHECK_SECONDS)
                        continue
                    later = self.next_retry_in()
                    if later is None:
                        break
                    if later > WAIT_IN_TASK_SECONDS:
                        again = later
                        break
                    self.wait_for_answers(max(0.01, later))
        finally:
            while self.in_flight:
                self.wait_for_answers(1.0)
                self.flush(force=True)
            self.flush(force=True)
        if again is None:
            finish_if_complete(self.batch.pk)
        return again

    def still_running(self) -> bool:
        if self.stopped:
            return False
        if time.monotonic() - self.checked_at < STATUS_CHECK_SECONDS:
            return True
        self.checked_at = time.monotonic()
        state = (
            Batch.objects.filter(pk=self.batch.pk)
            .values_list("status", "app__enabled")
            .first()
        )
        if state is None or state[0] != BatchStatus.RUNNING:
            return False
        if not state[1]:
            pause_automatically(
                self.batch.pk,
                stored_text.PAUSED_APP_DISABLED.format(app=self.app.name),
            )
            return False
        return True

    def group_size(self, free: int) -> int:
        """How many sends to reserve and claim at once.

        At full pace up to a whole group (BATCH_GROUP_SIZE): one Redis call and one
        claim for many sends, while the window still bounds the requests in flight
        at each slot (see send_group). The rows claimed and not yet answered stay
        within the larger of the window and a group (a worker that dies holds no
        more of them). While probing after a failure, or starting, no more than
        the window has free, so a probe is one request.
        """
        size = max(1, settings.BATCH_GROUP_SIZE)
        if self.window < self.window_cap():
            return max(1, min(free, size))
        return max(1, min(size, max(self.window, size) - self.in_flight))

    def send_group(self, n: int) -> bool:
        """Reserve n sends, claim up to n rows, send them at their slots. False if no
        row was ready."""
        # With Redis gone this falls back to the process's share of the rate.
        start, interval, n = ratelimit.reserve(self.app, self.kind, n)
        # Claimed now, sent from ``start`` on (at most a group's time ahead): the
        # claim's round trip then does not make the first slots late.
        flights = self.claim(n)
        if not flights:
            return False
        self.trouble = False
        late: list[Flight] = []
        for i, flight in enumerate(flights):
            slot = start + i * interval
            self.sleep_until(slot)
            if self.in_flight >= self.window and not self.trouble:
                # The provider answers slower than the pace: wait for a free place
                # in the window, until the slot is too late.
                self.wait_for_window(slot + LATE_SECONDS - time.monotonic())
            if (
                self.trouble
                or self.in_flight >= self.window
                or time.monotonic() - slot > LATE_SECONDS
            ):
                # A failure came back (the rest of the group waits for the back-off
                # the answers decide), the window is full (a provider that stops
                # answering holds few requests), or this process fell behind the
                # reserved slot (a busy CPU: sending now could bunch requests at the
                # provider beyond its limit). Never sent: the row goes back, the
                # token is lost.
                late.append(flight)
                continue
            self.submitted += 1
            _sender_pool().submit(self.send_one, flight)
        if late:
            self.release(late)
        return True

    def sleep_until(self, moment: float) -> None:
        while (left := moment - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))

    @property
    def in_flight(self) -> int:
        return self.submitted - self.received

    def send_one(self, flight: Flight) -> None:
        try:
            result = provider_send(self.credentials, self.kind, flight.body)
        except Exception as exc:  # a bug must not leave the row claimed forever
            logger.exception(
                "batch %s: send of record %s crashed", self.batch.pk, flight.pk
            )
            result = SendResult(
                outcome=ProviderOutcome.UNKNOWN,
                error_info=f"{type(exc).__name__} while sending",
                explanation="LiveAdmin failed while sending; delivery is unknown.",
            )
        if not (result.ok or result.outcome == ProviderOutcome.DROPPED):
            self.trouble = True
        self.done.put((flight, result))
        with self.answers:
            self.received += 1
            self.answers.notify_all()

    def wait_for_window(self, timeout: float) -> None:
        """Sleep up to ``timeout`` until fewer requests than the window are out."""
        with self.answers:
            self.answers.wait_for(
                lambda: self.submitted - self.received < self.window or self.trouble,
                timeout=max(0.0, timeout),
            )

    def wait_for_answers(self, timeout: float) -> None:
        """Sleep up to ``timeout``, waking at the first answer not yet noticed."""
        with self.answers:
            self.answers.wait_for(
                lambda: self.received > self.noticed, timeout=max(0.0, timeout)
            )
            self.noticed = self.received

    # -- claiming ------------------------------------------------------------------------

    def claim(self, n: int) -> list[Flight]:
        """Claim up to n ready rows in one statement, one round trip (SKIP LOCKED
        where the database has it: two runners never wait for, or take, each
        other's rows)."""
        now = timezone.now()
        rows = self.claim_statement.execute(self.batch.pk, now, n)
        return [
            Flight(
                pk, attempts, json.loads(body) if isinstance(body, str) else body, now
            )
            for pk, attempts, body in sorted(rows)
        ]

    def release(self, flights: list[Flight]) -> None:
        """Un-claim rows that were claimed but never handed to a sender."""
        SendRecord.objects.filter(
            pk__in=[f.pk for f in flights], outcome=Outcome.WAITING
        ).update(claimed_at=None, attempts=F("attempts") - 1)

    def next_retry_in(self) -> float | None:
        """Seconds until the next row waiting for a retry, None if there is none."""
        now = timezone.now()
        at = SendRecord.objects.filter(
            batch_id=self.batch.pk, outcome=Outcome.WAITING, claimed_at__isnull=True
        ).aggregate(at=Min("retry_at"))["at"]
        if at is None:
            return None
        return max(0.0, (at - now).total_seconds())

    # -- answers -------------------------------------------------------------------------

    def flush(self, *, force: bool = False) -> None:
        """Write the answers received so far (one statement) and adapt the pace.

        Answers are written in groups (FLUSH_ROWS, or after FLUSH_SECONDS): one
        statement per row would cost more than the send itself. While the window is
        below full (probing after a failure, or starting) they are written at once,
        so the pace adapts without delay.
        """
        pending = self.done.qsize()
        if not pending:
            return
        waited = time.monotonic() - self.flushed_at
        steady = self.window >= self.window_cap()
        if not force and steady and pending < FLUSH_ROWS and waited < FLUSH_SECONDS:
            return
        self.flushed_at = time.monotonic()
        answered: list[tuple[Flight, SendResult]] = []
        while True:
            try:
                answered.append(self.done.get_nowait())
            except queue.Empty:
                break
        if not answered:
            return
        now = timezone.now()
        delay = self.backoff_seconds()
        rows = []
        ok = permanent = 0
        transient: SendResult | None = None
        last_permanent: SendResult | None = None
        for flight, result in answered:
            if result.latency_ms:
                # Moving average of the provider's latency, in seconds.
                self.latency += (result.latency_ms / 1000 - self.latency) * 0.2
            outcome, retry = self.decide(flight, result)
            if retry:
                wait = max(delay, result.retry_after or 0.0)
                retry_at = now + timedelta(seconds=wait)
                rows.append(self.statement.row(flight, result, outcome, now, retry_at))
                transient = result
            else:
                rows.append(self.statement.row(flight, result, outcome, now, None))
                if outcome == Outcome.UNKNOWN:
                    transient = result
                elif outcome == Outcome.FAILED:
                    permanent += 1
                    last_permanent = result
                else:
                    ok += 1
        self.statement.execute(rows)
        if ok:
            self.on_success()
        if last_permanent is not None:
            self.on_permanent(permanent, last_permanent)
        if transient is not None:
            self.on_transient(transient.explanation or transient.error_info)

    def decide(self, flight: Flight, result: SendResult) -> tuple[str, bool]:
        """(final outcome, False) or (waiting, True) for a retry."""
        if result.outcome == ProviderOutcome.UNKNOWN:
            return (
                (Outcome.WAITING, True)
                if self.resend_unknown
                else (Outcome.UNKNOWN, False)
            )
        if result.outcome == ProviderOutcome.FAILED and result.retryable:
            # A documented retryable code has a cap; a request that never left
            # (no error code) is retried for as long as the outage lasts.
            if (
                result.error_code is not None
                and flight.attempts >= settings.SEND_MAX_ATTEMPTS
            ):
                return Outcome.FAILED, False
            return Outcome.WAITING, True
        return str(result.outcome), False

    # -- pace and batch state ------------------------------------------------------------

    def backoff_seconds(self) -> float:
        if self.failing_since is None:
            return MIN_BACKOFF_SECONDS
        lasted = (timezone.now() - self.failing_since).total_seconds()
        return min(MAX_BACKOFF_SECONDS, max(MIN_BACKOFF_SECONDS, lasted / 4))

    def window_cap(self) -> int:
        """Requests worth keeping in flight: twice what the rate needs at the
        latency seen, so a provider that stops answering holds few requests
        (each of which could only end ``unknown``)."""
        needed = self.rate * self.latency * 2
        return max(2, min(self.max_window, math.ceil(needed) + 1))

    def on_success(self) -> None:
        self.window = min(self.window_cap(), self.window * 2)
        if self.failing_since is not None:
            Batch.objects.filter(pk=self.batch.pk).update(
                failing_since=None, failing_reason=""
            )
            logger.info("batch %s: the provider answers again, resuming", self.batch.pk)
            self.failing_since = None
        if self.failures_noted:
            Batch.objects.filter(pk=self.batch.pk, consecutive_failures__gt=0).update(
                consecutive_failures=0
            )
            self.failures_noted = False

    def on_permanent(self, count: int, last: SendResult) -> None:
        self.window = 1
        self.failures_noted = True
        Batch.objects.filter(pk=self.batch.pk).update(
            consecutive_failures=F("consecutive_failures") + count
        )
        threshold = self.batch.pause_after_failures
        if (
            threshold
            and Batch.objects.filter(
                pk=self.batch.pk, consecutive_failures__gte=threshold
            ).exists()
        ):
            code = "" if last.error_code is None else f" {last.error_code}"
            self.stopped = True
            pause_automatically(
                self.batch.pk,
                stored_text.PAUSED_AFTER_FAILURES.format(
                    threshold=threshold,
                    code=code,
                    last=last.explanation or last.error_info or "no answer",
                ),
            )

    def on_transient(self, reason: str) -> None:
        """Back off, then probe with one request (the window restarts at 1)."""
        self.window = 1
        now = timezone.now()
        if self.failing_since is None:
            Batch.objects.filter(pk=self.batch.pk, failing_since__isnull=True).update(
                failing_since=now, failing_reason=reason
            )
            self.failing_since = (
                Batch.objects.filter(pk=self.batch.pk)
                .values_list("failing_since", flat=True)
                .first()
            ) or now
            logger.warning("batch %s: backing off: %s", self.batch.pk, reason)
        else:
            Batch.objects.filter(pk=self.batch.pk).update(failing_reason=reason)
        lasted = (now - self.failing_since).total_seconds()
        if lasted > settings.BATCH_OUTAGE_PAUSE_SECONDS:
            minutes = max(1, round(lasted / 60))
            self.stopped = True
            pause_automatically(
                self.batch.pk,
                stored_text.PAUSED_OUTAGE.format(
                    minutes=minutes,
                    limit=settings.BATCH_OUTAGE_PAUSE_SECONDS // 60 or 1,
                    reason=reason,
                ),
            )
        self.backoff_until = time.monotonic() + self.backoff_seconds() * random.uniform(
            0.8, 1.2
        )


class _AnswerStatement:
    """One UPDATE for many answered rows (executemany: the driver pipelines it).

    Raw SQL on purpose: the ORM's bulk_update cannot keep its ``outcome =
    'waiting'`` guard (a final row never changes, even if recovery closed it
    meanwhile), and building CASE expressions per field costs more CPU than the
    send itself.
    """

    COLUMNS = (
        "outcome",
        "action_status",
        "error_code",
        "error_info",
        "request_id",
        "msg_seq",
        "msg_time",
        "drop_reason",
        "http_status",
        "latency_ms",
        "retryable",
        "response_body",
        "claimed_at",
        "retry_at",
        "updated_at",
    )

    def __init__(self) -> None:
        table = connection.ops.quote_name(SendRecord._meta.db_table)
        json_param = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
        sets = ", ".join(
            f"{connection.ops.quote_name(c)} = {json_param if c == 'response_body' else '%s'}"
            for c in self.COLUMNS
        )
        self.sql = f"UPDATE {table} SET {sets} WHERE id = %s AND outcome = %s"

    def row(
        self,
        flight: Flight,
        result: SendResult,
        outcome: str,
        now: datetime,
        retry_at: datetime | None,
    ) -> tuple[Any, ...]:
        body = result.response_body
        return (
            outcome,
            result.action_status,
            result.error_code,
            (result.error_info or "")[:2000],
            result.request_id,
            result.msg_seq,
            result.msg_time,
            result.drop_reason,
            result.http_status,
            result.latency_ms,
            result.retryable,
            None if body is None else json.dumps(body),
            None if retry_at is not None else flight.claimed_at,
            retry_at,
            now,
            flight.pk,
            Outcome.WAITING,
        )

    def execute(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        params = [self._adapt(row) for row in rows]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(self.sql, params)

    @staticmethod
    def _adapt(row: tuple[Any, ...]) -> tuple[Any, ...]:
        # Datetimes as the backend stores them (SQLite keeps text).
        return tuple(
            connection.ops.adapt_datetimefield_value(v)
            if isinstance(v, datetime)
            else v
            for v in row
        )


class _ClaimStatement:
    """Claim the next ready rows of a batch: one UPDATE ... RETURNING (a select
    for update, an update and a commit through the ORM were four round trips and
    more CPU than the send itself)."""

    def __init__(self) -> None:
        table = connection.ops.quote_name(SendRecord._meta.db_table)
        lock = (
            " FOR UPDATE SKIP LOCKED"
            if connection.features.has_select_for_update_skip_locked
            else ""
        )
        self.sql = (
            f"UPDATE {table} SET claimed_at = %s, attempts = attempts + 1 "
            f"WHERE id IN (SELECT id FROM {table} WHERE batch_id = %s "
            "AND outcome = %s AND claimed_at IS NULL "
            f"AND (retry_at IS NULL OR retry_at <= %s) ORDER BY id LIMIT %s{lock}) "
            "RETURNING id, attempts, request_body"
        )

    def execute(self, batch_id: int, now: datetime, n: int) -> list[tuple[Any, ...]]:
        at = connection.ops.adapt_datetimefield_value(now)
        # One statement, atomic in itself: no transaction around it (BEGIN and
        # COMMIT would be two more round trips).
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [at, batch_id, str(Outcome.WAITING), at, n])
            return cursor.fetchall()
