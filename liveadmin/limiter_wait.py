"""Time sends spent waiting for the rate limiter, shared across processes.

``waited_for_slots()`` is the one call the limiter makes (messaging.ratelimit.reserve,
for every reservation); it adds to a counter
in memory and, at most once a second, moves it to the cache (Redis when
``REDIS_URL`` is set, so every worker adds to the same total) for /metrics.
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)

WAIT_KEY = "liveadmin:metrics:ratelimit_wait_us"
COUNT_KEY = "liveadmin:metrics:ratelimit_waits"
FLUSH_SECONDS = 1.0

_lock = threading.Lock()
_pending_us = 0
_pending_n = 0
_last_flush = 0.0


def waited_for_slots(wait: float, interval: float, n: int) -> None:
    """Count ``n`` sends reserved together: the first waits ``wait`` seconds, each
    next one ``interval`` more (messaging.ratelimit.reserve)."""
    total = n * wait + interval * n * (n - 1) / 2
    waiting = n if wait > 0 else max(0, n - 1) if interval > 0 else 0
    if total > 0 and waiting:
        waited(total, waiting)


def waited(seconds: float, sends: int = 1) -> None:
    """Count ``sends`` that waited ``seconds`` in all for a token."""
    global _pending_us, _pending_n
    with _lock:
        _pending_us += int(seconds * 1_000_000)
        _pending_n += sends
        due = time.monotonic() - _last_flush >= FLUSH_SECONDS
    if due:
        flush()


def _incr(key: str, n: int) -> None:
    try:
        cache.incr(key, n)
    except ValueError:
        if not cache.add(key, n, timeout=None):
            cache.incr(key, n)


def flush() -> None:
    global _pending_us, _pending_n, _last_flush
    with _lock:
        us, n = _pending_us, _pending_n
        _pending_us = _pending_n = 0
        _last_flush = time.monotonic()
    if not n:
        return
    try:
        _incr(WAIT_KEY, us)
        _incr(COUNT_KEY, n)
    except Exception:
        # Metrics never stop a send: the counts are lost, the send goes on.
        logger.warning("could not record the rate limiter's wait time", exc_info=True)


def totals() -> tuple[float, int]:
    """(seconds waited, number of waits) since the cache was last emptied."""
    flush()
    return (cache.get(WAIT_KEY) or 0) / 1_000_000, cache.get(COUNT_KEY) or 0
