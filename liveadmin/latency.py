"""The webhook's decision time, counted per minute in histogram buckets.

``observe()`` is the one call the webhook makes: it adds to a counter in memory
(a lock and a dict increment). A background thread writes the counts every
``WEBHOOK_RECORD_SECONDS`` as Tally rows (metric "latency", span minute); the
rollup sums them into hours and days for the moderators' page and /metrics.
Tests switch the thread off (``WEBHOOK_RECORD_IN_BACKGROUND``) and call flush().
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import F

logger = logging.getLogger(__name__)

# Upper bounds in milliseconds; 0 stands for "above every bound" (+Inf).
BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
# The row holding the sum of all observed times, in microseconds (for /metrics).
SUM_CODE = -1
# The provider waits this long for an answer before applying its failure policy.
BUDGET_MS = 2000


def bucket_for(ms: float) -> int:
    for bound in BUCKETS_MS:
        if ms <= bound:
            return bound
    return 0


class LatencyCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter = Counter()  # (minute epoch seconds, bucket)
        self._thread: threading.Thread | None = None

    def observe(self, seconds: float) -> None:
        now = time.time()
        minute = int(now - now % 60)
        with self._lock:
            self._counts[(minute, bucket_for(seconds * 1000))] += 1
            self._counts[(minute, SUM_CODE)] += int(seconds * 1_000_000)
        if settings.WEBHOOK_RECORD_IN_BACKGROUND and (
            self._thread is None or not self._thread.is_alive()
        ):
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._run, name="webhook-latency", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(settings.WEBHOOK_RECORD_SECONDS)
            try:
                close_old_connections()
                self.flush()
            except Exception:
                logger.exception("could not write the webhook latency counts")

    def take(self) -> Counter:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts

    def flush(self) -> int:
        """Write the pending counts; returns how many observations were written."""
        from liveadmin.models import Metric, Span, Tally

        counts = self.take()
        for (minute, bucket), n in sorted(counts.items()):
            key = {
                "metric": Metric.LATENCY,
                "span": Span.MINUTE,
                "start": datetime.fromtimestamp(minute, tz=UTC),
                "code": bucket,
            }
            if Tally.objects.filter(**key).update(count=F("count") + n):
                continue
            try:
                with transaction.atomic():
                    Tally.objects.create(count=n, **key)
            except IntegrityError:
                # Another process created the row between our update and insert.
                Tally.objects.filter(**key).update(count=F("count") + n)
        return sum(n for (_, bucket), n in counts.items() if bucket != SUM_CODE)


latency = LatencyCounter()


def observe(seconds: float) -> None:
    """Count one webhook answer that took ``seconds``."""
    latency.observe(seconds)


@atexit.register
def _flush_at_exit() -> None:
    if settings.configured and settings.WEBHOOK_RECORD_IN_BACKGROUND:
        try:
            latency.flush()
        except Exception:
            logger.exception("could not write the webhook latency counts at exit")
