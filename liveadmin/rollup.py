"""Keep the overview's per-minute counts (liveadmin.models.Tally) up to date.

Everything here reads the logs incrementally, off the send path and the webhook
hot path:

- sends: rows of the send log past the last id read, counted once they have an
  answer, at the minute they were recorded (``created_at``, the time the log shows
  and filters on). Rows still waiting are remembered (PendingSend) and counted
  when their answer arrives.
- decisions: the webhook's own per-minute counts by action (webhooks.DecisionCount)
  are summed into hours, days and a total; non-allow decision rows past the last
  id read are counted per sender and per matched entry.
- webhook decision time: the webhook's per-minute latency buckets
  (webhooks.LatencyCount), copied and summed the same way.

Rows younger than ``OVERVIEW_ROLLUP_GRACE_SECONDS`` are left for the next run:
ids are handed out before a transaction commits, so a row with a lower id may
still appear shortly after a higher one. Runs are serialised by a row lock on
their RollupState; a run that finds it locked skips (another run is at it).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from liveadmin.models import LastSend, Metric, PendingSend, RollupState, Span, Tally

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOT_ANSWERED = ("waiting",)
CHECK = "check"  # the kind of a credential check (messaging.services.credentials)
# (metric, span, start, app_id, user_id, kind, outcome, code, key)
TallyKey = tuple[str, str, datetime, int, int, str, str, int, str]
UPSERT_CHUNK = 2000
KEY_FIELDS = (
    "metric",
    "span",
    "start",
    "app_id",
    "user_id",
    "kind",
    "outcome",
    "code",
    "key",
)


def floor_minute(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def floor_hour(at: datetime) -> datetime:
    return floor_minute(at).replace(minute=0)


def floor_day(at: datetime) -> datetime:
    return floor_hour(at).replace(hour=0)


# How long fine-grained counts are worth keeping: only the "last hour" range reads
# minutes, and the top lists read hours only for "last 24 hours" (days for a week).
KEEP: dict[tuple[str, str], timedelta] = {
    (Metric.SEND, Span.MINUTE): timedelta(days=2),
    (Metric.SENDER, Span.MINUTE): timedelta(days=2),
    (Metric.SENDER, Span.HOUR): timedelta(days=8),
    (Metric.ENTRY, Span.MINUTE): timedelta(days=2),
    (Metric.ENTRY, Span.HOUR): timedelta(days=8),
}
# The sliding windows of the top lists, and how many hours each holds.
WINDOWS = {Span.LAST_DAY: 24, Span.LAST_WEEK: 24 * 7}
WINDOWED = (Metric.SENDER, Metric.ENTRY)
# A page sums the minute counts at most this often (seconds).
MINUTES_EVERY = 60.0

SPAN_FLOOR = {
    Span.MINUTE: floor_minute,
    Span.HOUR: floor_hour,
    Span.DAY: floor_day,
    Span.TOTAL: lambda at: EPOCH,
}


def rollup(*, limit: int | None = None, on_demand: bool = False) -> dict[str, int]:
    """Bring every count up to date (at most ``limit`` new log rows per log).

    ``on_demand`` (a page being opened) reads the new log rows only, and sums the
    minute counts at most every MINUTES_EVERY seconds; pruning is the periodic
    task's job.
    """
    limit = limit or settings.OVERVIEW_ROLLUP_LIMIT
    done = {
        "sends": rollup_sends(limit),
        "decisions": rollup_decision_rows(limit),
        "minutes": rollup_minute_counts(min_age=MINUTES_EVERY if on_demand else 0.0),
    }
    if not on_demand:
        done["pruned"] = prune()
    return done


def prune() -> int:
    """Delete fine-grained counts older than they are read (KEEP)."""
    now = timezone.now()
    deleted = 0
    for (metric, span), keep in KEEP.items():
        deleted += Tally.objects.filter(
            metric=metric, span=span, start__lt=now - keep - timedelta(hours=1)
        ).delete()[0]
    return deleted


def _lock_state(name: str) -> RollupState | None:
    """This rollup's state row, locked for the transaction; None if another run holds it."""
    RollupState.objects.get_or_create(name=name)
    qs = RollupState.objects.filter(name=name)
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True)
    return qs.first()


def _every_span(
    counts: Counter, now: datetime, at: datetime, metric: str, **dims: Any
) -> None:
    for span, floor in SPAN_FLOOR.items():
        keep = KEEP.get((metric, span))
        if keep is not None and at < now - keep:
            continue
        counts[(metric, span.value, floor(at), *_dims(dims))] += 1
    if metric in WINDOWED:
        hour = floor_hour(at)
        for span, hours in WINDOWS.items():
            if hour > floor_hour(now) - timedelta(hours=hours):
                counts[(metric, span.value, EPOCH, *_dims(dims))] += 1


def _dims(dims: dict[str, Any]) -> tuple:
    return (
        dims.get("app_id", 0),
        dims.get("user_id", 0),
        dims.get("kind", ""),
        dims.get("outcome", ""),
        dims.get("code", 0),
        dims.get("key", ""),
    )


def expire_windows(now: datetime) -> int:
    """Subtract from each window the hours that have left it since the last run.

    Callers hold the decisions lock and add new counts with the same ``now``: an
    hour's rows are added to a window only while the hour is inside it, so
    subtracting the hour's count when it leaves takes out exactly what went in.
    """
    subtracted = 0
    for span, hours in WINDOWS.items():
        state = RollupState.objects.get_or_create(name=f"window-{span.value}")[0]
        # Hours before this one are out of the window.
        boundary = floor_hour(now) - timedelta(hours=hours - 1)
        since = state.last_minute
        if since is not None and since < boundary:
            leaving: Counter = Counter()
            for row in Tally.objects.filter(
                metric__in=WINDOWED,
                span=Span.HOUR,
                start__gte=since,
                start__lt=boundary,
            ).values_list("metric", *KEY_FIELDS[3:], "count"):
                leaving[(row[0], span.value, EPOCH, *row[1:-1])] -= row[-1]
            add_counts(leaving)
            Tally.objects.filter(span=span, count__lte=0).delete()
            subtracted += len(leaving)
        if since is None or since < boundary:
            state.last_minute = boundary
            state.save(update_fields=["last_minute", "updated_at"])
    return subtracted


def add_counts(counts: Counter) -> None:
    """count += n for each key, creating missing rows: one INSERT ... ON CONFLICT DO
    UPDATE per chunk (PostgreSQL and SQLite both have it), so a run costs a few
    statements however many rows it touches. On PostgreSQL the rows travel as one
    array per column (UNNEST), as Django's bulk_create does."""
    if not counts:
        return
    table = connection.ops.quote_name(Tally._meta.db_table)
    columns = ", ".join(KEY_FIELDS)
    upsert = (
        f"ON CONFLICT ({columns}) DO UPDATE SET count = {table}.count + excluded.count"
    )
    items = list(counts.items())
    size = UPSERT_CHUNK
    if connection.vendor != "postgresql":
        size = min(size, (connection.features.max_query_params or 999) // 10)
    with connection.cursor() as cursor:
        for i in range(0, len(items), size):
            chunk = items[i : i + size]
            if connection.vendor == "postgresql":
                arrays = [
                    list(column) for column in zip(*(k for k, _ in chunk), strict=True)
                ]
                arrays.append([n for _, n in chunk])
                cursor.execute(
                    f"INSERT INTO {table} ({columns}, count) SELECT * FROM UNNEST("
                    "%s::varchar[], %s::varchar[], %s::timestamptz[], %s::bigint[], "
                    "%s::bigint[], %s::varchar[], %s::varchar[], %s::bigint[], "
                    f"%s::varchar[], %s::bigint[]) {upsert}",
                    arrays,
                )
                continue
            values = ", ".join(
                ["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk)
            )
            params: list[Any] = []
            for key, n in chunk:
                start = connection.ops.adapt_datetimefield_value(key[2])
                params.extend((*key[:2], start, *key[3:], n))
            cursor.execute(
                f"INSERT INTO {table} ({columns}, count) VALUES {values} {upsert}",
                params,
            )


SEND_FIELDS = ("id", "created_at", "app_id", "user_id", "kind", "outcome", "error_code")


def rollup_sends(limit: int) -> int:
    """Count newly answered sends; returns how many were counted."""
    from messaging.models import SendRecord

    cutoff = timezone.now() - timedelta(seconds=settings.OVERVIEW_ROLLUP_GRACE_SECONDS)
    with transaction.atomic():
        state = _lock_state("sends")
        if state is None:
            return 0
        rows = list(
            SendRecord.objects.filter(id__gt=state.last_id)
            .order_by("id")
            .values_list(*SEND_FIELDS)[:limit]
        )
        settled = []
        for row in rows:
            if row[1] >= cutoff:
                break
            settled.append(row)
        answered = [r for r in settled if r[5] not in NOT_ANSWERED]
        PendingSend.objects.bulk_create(
            [PendingSend(record_id=r[0]) for r in settled if r[5] in NOT_ANSWERED],
            ignore_conflicts=True,
        )
        pending = list(PendingSend.objects.values_list("record_id", flat=True)[:limit])
        if pending:
            now_answered = list(
                SendRecord.objects.filter(id__in=pending)
                .exclude(outcome__in=NOT_ANSWERED)
                .values_list(*SEND_FIELDS)
            )
            PendingSend.objects.filter(
                record_id__in=[r[0] for r in now_answered]
            ).delete()
            answered += now_answered
        _count_sends(answered)
        if settled:
            state.last_id = settled[-1][0]
            state.save(update_fields=["last_id", "updated_at"])
    return len(answered)


def _count_sends(rows: Iterable[tuple]) -> None:
    counts: Counter = Counter()
    now = timezone.now()
    latest: dict[tuple[int, str], tuple[int, datetime]] = {}
    for pk, created_at, app_id, user_id, kind, outcome, code in rows:
        _every_span(
            counts,
            now,
            created_at,
            Metric.SEND,
            app_id=app_id,
            user_id=user_id,
            kind=kind,
            outcome=outcome,
            code=code or 0,
        )
        _every_span(counts, now, created_at, Metric.VOLUME, outcome=outcome)
        # Credential checks are the app's last check, not its last send.
        last_key = (app_id, CHECK if kind == CHECK else outcome)
        seen = latest.get(last_key)
        if seen is None or pk > seen[0]:
            latest[last_key] = (pk, created_at)
    add_counts(counts)
    for (app_id, outcome), (pk, at) in latest.items():
        row = LastSend.objects.filter(app_id=app_id, outcome=outcome).first()
        if row is None:
            LastSend.objects.create(app_id=app_id, outcome=outcome, record_id=pk, at=at)
        elif pk > row.record_id:
            LastSend.objects.filter(pk=row.pk).update(record_id=pk, at=at)


def rollup_decision_rows(limit: int) -> int:
    """Count new non-allow decisions per sender and per matched entry."""
    from webhooks.models import Decision

    cutoff = timezone.now() - timedelta(seconds=settings.OVERVIEW_ROLLUP_GRACE_SECONDS)
    with transaction.atomic():
        state = _lock_state("decisions")
        if state is None:
            return 0
        rows = list(
            Decision.objects.filter(id__gt=state.last_id)
            .order_by("id")
            .values_list("id", "created_at", "app_id", "sender", "entry_ids")[:limit]
        )
        counts: Counter = Counter()
        now = timezone.now()
        expire_windows(now)
        done = 0
        for pk, created_at, app_id, sender, entry_ids in rows:
            if created_at >= cutoff:
                break
            _every_span(
                counts, now, created_at, Metric.SENDER, app_id=app_id, key=sender[:128]
            )
            for entry_id in entry_ids or []:
                # An entry is one list's, whatever app hit it: no app dimension,
                # so a window holds one row per entry.
                _every_span(counts, now, created_at, Metric.ENTRY, code=int(entry_id))
            state.last_id = pk
            done += 1
        add_counts(counts)
        if done:
            state.save(update_fields=["last_id", "updated_at"])
    return done


def rollup_minute_counts(*, min_age: float = 0.0) -> int:
    """Copy the webhook's per-minute counts by action, and sum minute counts
    (decisions, latency) into hours, days and a total. Recomputes from a few
    minutes before the last run, so counts flushed late are included."""
    from messaging.models import ProviderApp
    from webhooks.models import DecisionCount, LatencyCount

    now = timezone.now()
    with transaction.atomic():
        state = _lock_state("minutes")
        if state is None:
            return 0
        if (
            min_age
            and state.last_minute is not None
            and (now - state.last_minute).total_seconds() < min_age
        ):
            return 0
        if state.last_minute is None:
            first = DecisionCount.objects.order_by("minute").values_list(
                "minute", flat=True
            )[:1]
            first_latency = LatencyCount.objects.order_by("minute").values_list(
                "minute", flat=True
            )[:1]
            since = min([*first, *first_latency, now])
        else:
            since = state.last_minute - timedelta(minutes=5)
        since = floor_minute(since)
        apps = ProviderApp.objects.values("pk")
        Tally.objects.filter(
            metric__in=(Metric.DECISION, Metric.LATENCY),
            span=Span.MINUTE,
            start__gte=since,
        ).delete()
        # By app: the (app, minute, ...) key is each table's only index.
        copied = [
            Tally(
                metric=Metric.DECISION,
                span=Span.MINUTE,
                start=minute,
                app_id=app_id,
                outcome=action,
                count=n,
            )
            for app_id, minute, action, n in DecisionCount.objects.filter(
                app_id__in=apps, minute__gte=since
            ).values_list("app_id", "minute", "action", "count")
        ]
        # Decision time for all apps together (the overview and /metrics show it so).
        copied += [
            Tally(
                metric=Metric.LATENCY,
                span=Span.MINUTE,
                start=row["minute"],
                code=row["bucket_us"],
                count=row["n"],
            )
            for row in LatencyCount.objects.filter(app_id__in=apps, minute__gte=since)
            .order_by()
            .values("minute", "bucket_us")
            .annotate(n=Sum("count"))
        ]
        Tally.objects.bulk_create(copied, batch_size=1000)
        for metric in (Metric.DECISION, Metric.LATENCY):
            _resum(metric, Span.MINUTE, Span.HOUR, floor_hour(since), TruncHour)
            _resum(metric, Span.HOUR, Span.DAY, floor_day(since), TruncDay)
            _resum(metric, Span.DAY, Span.TOTAL, EPOCH, None)
        state.last_minute = now
        state.save(update_fields=["last_minute", "updated_at"])
    return len(copied)


def _resum(
    metric: str, source: Span, target: Span, since: datetime, trunc: Any
) -> None:
    """Replace ``target`` rows from ``since`` on with sums of ``source`` rows."""
    Tally.objects.filter(metric=metric, span=target, start__gte=since).delete()
    rows = Tally.objects.filter(metric=metric, span=source, start__gte=since)
    if trunc is not None:
        rows = rows.annotate(bucket=trunc("start", tzinfo=UTC))
    dims = ["app_id", "user_id", "kind", "outcome", "code", "key"]
    group = ["bucket", *dims] if trunc is not None else dims
    sums = rows.order_by().values(*group).annotate(n=Sum("count"))
    Tally.objects.bulk_create(
        [
            Tally(
                metric=metric,
                span=target,
                start=s["bucket"] if trunc is not None else EPOCH,
                count=s["n"],
                **{d: s[d] for d in dims},
            )
            for s in sums
        ],
        batch_size=1000,
    )
