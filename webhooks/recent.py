"""Recent messages per app (for dry runs) and the webhook's decision times.

The hot path calls ``recent.note(...)``: a lock and a list append, nothing else.
A background thread (like the decision recorder's) takes the batch every
``WEBHOOK_RECORD_SECONDS`` and writes it:

- the messages, packed in one string each, to a Redis list per app (``RPUSH`` of the batch then ``LTRIM`` to
  the last RECENT_MESSAGES_MAX, one pipelined round trip per batch) when REDIS_URL
  is set, so every web process feeds one store; without Redis, to a bounded deque
  per app in this process;
- the decision times to ``LatencyCount`` (per app, minute and ~10% wide bucket).

A list rather than a stream: a message is one packed string, so reading 100,000
back is one LRANGE per 10,000 and no per-field objects (measured here: 0.18 s with
LRANGE against 4.3 s with XRANGE for 100,000 entries). Entries are appended in
time order, so the periodic purge trims the list's old head.
"""

from __future__ import annotations

import atexit
import functools
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connections

from webhooks.background import BackgroundWriter

logger = logging.getLogger(__name__)

LIST_KEY = "liveadmin:recent:{app_pk}"
SEP = "\x1f"  # unit separator: never in room or user IDs (stripped if it were)
# The provider waits this long for an answer (PROVIDERS.md 3.3): the latency budget.
BUDGET_US = 2_000_000
_GROWTH = 1.1  # bucket width: each bucket's bound is 10% above the previous one


@dataclass(frozen=True)
class RecentMessage:
    at: float  # Unix seconds
    room_id: str
    sender: str
    text: str
    action: str  # what the webhook answered


def pack(at: float, action: str, room_id: str, sender: str, text: str) -> str:
    """One message as the string the store keeps (``unpack`` reads it back)."""
    room, sender = room_id.replace(SEP, ""), sender.replace(SEP, "")
    return f"{at:.3f}{SEP}{action}{SEP}{room}{SEP}{sender}{SEP}{text}"


def unpack(raw: bytes | str) -> RecentMessage | None:
    try:
        packed = raw.decode() if isinstance(raw, bytes) else raw
        at, action, room, sender, text = packed.split(SEP, 4)
        return RecentMessage(float(at), room, sender, text, action)
    except ValueError:
        return None  # not one of ours


@functools.lru_cache(maxsize=4096)
def bucket_of(latency_us: int) -> int:
    """The upper bound (µs) of the bucket holding this latency. No bucket straddles
    the budget, so "over budget" is exact."""
    upper = math.ceil(_GROWTH ** math.ceil(math.log(max(latency_us, 1), _GROWTH)))
    if latency_us <= BUDGET_US:
        return min(upper, BUDGET_US)
    return max(upper, BUDGET_US + 1)


def _minute(minute: int) -> datetime:
    """The start of a minute counted from the epoch (``int(at // 60)``)."""
    return datetime.fromtimestamp(minute * 60, tz=UTC)


class RecentStore(BackgroundWriter):
    thread_name = "webhook-recent"
    failure = "could not write recent messages / decision times"

    def __init__(self) -> None:
        super().__init__()
        # (at, app_pk, room, sender, text, action, latency_us)
        self._pending: list[tuple] = []
        # Without Redis: each app's messages packed as in Redis. Strings, not objects:
        # the garbage collector does not walk strings, and walking 100,000 kept
        # objects per app cost the webhook a quarter of its throughput (measured).
        self._memory: dict[int, deque[str]] = {}

    # --- hot path: memory only ----------------------------------------------------
    def wake(self) -> None:
        """Write soon (escalation imposed a sanction the other processes must learn)."""
        if settings.WEBHOOK_RECORD_IN_BACKGROUND:
            if self._thread is None:
                self._start()
            self._wake.set()

    def note(
        self,
        app_pk: int,
        room_id: str,
        sender: str,
        text: str,
        action: str,
        latency_us: int,
    ) -> None:
        """``text``: what a dry run re-reads (hotpath.message_text of the call)."""
        item = (time.time(), app_pk, room_id, sender, text, action, latency_us)
        with self._lock:
            self._pending.append(item)
            size = len(self._pending)
        self._maybe_wake(size)

    def discard(self) -> None:
        """Forget what is pending and what this process keeps (tests)."""
        with self._lock:
            self._pending = []
            self._memory.clear()

    # --- the write ------------------------------------------------------------------
    def flush(self) -> int:
        """Write what is pending; returns the number of messages stored. Also stores
        the sanctions escalation imposed in this process (webhooks/enforcement.py)."""
        from webhooks.enforcement import escalator

        escalator.flush()
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        latencies: Counter = Counter()
        for at, app_pk, *_rest, latency_us in batch:
            latencies[(app_pk, int(at // 60), bucket_of(latency_us))] += 1
        stored = 0
        if settings.RECENT_MESSAGES_ENABLED:
            # Packed straight from the pending tuples (no RecentMessage per message):
            # this thread shares the GIL with the answers.
            by_app: dict[int, list[str]] = {}
            for at, app_pk, room, sender, text, action, _lat in batch:
                packed = pack(at, action, room, sender, text)
                box = by_app.get(app_pk)
                if box is None:
                    by_app[app_pk] = [packed]
                else:
                    box.append(packed)
            stored = self._store(by_app)
        self._write_latencies(latencies)
        return stored

    def _store(self, by_app: dict[int, list[str]]) -> int:
        """Keep each app's packed messages; returns how many."""
        from webhooks.version import redis_client

        client = redis_client()
        limit = settings.RECENT_MESSAGES_MAX
        count = sum(map(len, by_app.values()))
        if client is None:
            for app_pk, packed in by_app.items():
                box = self._memory.get(app_pk)
                if box is None:
                    box = self._memory[app_pk] = deque(maxlen=limit)
                box.extend(packed)
            return count
        pipe = client.pipeline(transaction=False)
        for app_pk, packed in by_app.items():
            key = LIST_KEY.format(app_pk=app_pk)
            pipe.rpush(key, *packed)
            pipe.ltrim(key, -limit, -1)
        pipe.execute()
        return count

    def _write_latencies(self, latencies: Counter) -> None:
        """Add the batch's counts in one statement (an upsert that adds): a flush runs
        several times a second under load, and an ORM update per bucket cost the
        webhook's process a tenth of its time (measured with py-spy)."""
        from messaging.models import ProviderApp
        from webhooks.models import LatencyCount

        live = set(
            ProviderApp.objects.filter(pk__in={k[0] for k in latencies}).values_list(
                "pk", flat=True
            )
        )
        connection = connections[LatencyCount.objects.db]
        ops = connection.ops
        rows = [
            (app_pk, ops.adapt_datetimefield_value(_minute(minute)), bucket, n)
            for (app_pk, minute, bucket), n in sorted(latencies.items())
            if app_pk in live
        ]
        if not rows:
            return
        table, count = (
            ops.quote_name(LatencyCount._meta.db_table),
            ops.quote_name("count"),
        )
        columns = ", ".join(map(ops.quote_name, ("app_id", "minute", "bucket_us")))
        values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({columns}, {count}) VALUES {values} "
                f"ON CONFLICT ({columns}) DO UPDATE SET {count} = {table}.{count} + excluded.{count}",
                [value for row in rows for value in row],
            )

    # --- reading and purging --------------------------------------------------------
    def read(
        self, app_pk: int, *, since: float | None = None, limit: int | None = None
    ) -> Iterator[RecentMessage]:
        """The app's stored messages from ``since`` (default: the kept window), oldest first."""
        from webhooks.version import redis_client

        if since is None:
            since = time.time() - settings.RECENT_MESSAGES_SECONDS
        limit = limit or settings.RECENT_MESSAGES_MAX
        client = redis_client()
        if client is None:
            box = self._memory.get(app_pk, ())
            count = 0
            for raw in list(box):
                m = unpack(raw)
                if m is not None and m.at >= since and count < limit:
                    count += 1
                    yield m
            return
        key = LIST_KEY.format(app_pk=app_pk)
        start, count = 0, 0
        while count < limit:
            chunk = client.lrange(key, start, start + 9_999)
            for raw in chunk:
                item = unpack(raw)
                if item is not None and item.at >= since:
                    count += 1
                    yield item
                    if count >= limit:
                        return
            if len(chunk) < 10_000:
                return
            start += len(chunk)

    def purge(self, *, now: float | None = None) -> int:
        """Drop messages older than RECENT_MESSAGES_SECONDS; returns how many."""
        from webhooks.version import redis_client

        now = time.time() if now is None else now
        cutoff = now - settings.RECENT_MESSAGES_SECONDS
        client = redis_client()
        dropped = 0
        if client is None:
            for box in self._memory.values():
                while box and float(box[0].split(SEP, 1)[0]) < cutoff:
                    box.popleft()
                    dropped += 1
            return dropped
        from messaging.models import ProviderApp

        for app_pk in ProviderApp.objects.values_list("pk", flat=True):
            key = LIST_KEY.format(app_pk=app_pk)
            old = 0
            while True:
                chunk = client.lrange(key, old, old + 999)
                young = [
                    i
                    for i, raw in enumerate(chunk)
                    if (m := unpack(raw)) and m.at >= cutoff
                ]
                if young:
                    old += young[0]
                    break
                old += len(chunk)
                if len(chunk) < 1000:
                    break
            if old:
                client.ltrim(key, old, -1)
                dropped += old
        return dropped

    def clear(self, app_pk: int) -> None:
        """Forget one app's stored messages (tests, benches)."""
        from webhooks.version import redis_client

        client = redis_client()
        if client is None:
            self._memory.pop(app_pk, None)
        else:
            client.delete(LIST_KEY.format(app_pk=app_pk))


recent = RecentStore()


@atexit.register
def _flush_at_exit() -> None:
    if settings.configured and settings.WEBHOOK_RECORD_IN_BACKGROUND:
        try:
            recent.flush()
        except Exception:
            logger.exception("could not write recent messages at exit")


def latency_summary(
    app_pk: int | None, seconds: int, *, now: Any = None
) -> dict[str, Any]:
    """p50 / p95 / p99 (µs, bucket upper bounds), count and count over budget."""
    from datetime import timedelta

    from django.db.models import Sum
    from django.utils import timezone

    from webhooks.models import LatencyCount

    now = now or timezone.now()
    qs = LatencyCount.objects.filter(minute__gte=now - timedelta(seconds=seconds))
    if app_pk is not None:
        qs = qs.filter(app_id=app_pk)
    buckets = sorted(
        qs.values_list("bucket_us")
        .annotate(n=Sum("count"))
        .values_list("bucket_us", "n")
    )
    total = sum(n for _b, n in buckets)
    out: dict[str, Any] = {
        "count": total,
        "over_budget": sum(n for b, n in buckets if b > BUDGET_US),
        "budget_us": BUDGET_US,
    }
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        out[name] = None
        if total:
            want, seen = q * total, 0
            for bucket, n in buckets:
                seen += n
                if seen >= want:
                    out[name] = bucket
                    break
    return out
