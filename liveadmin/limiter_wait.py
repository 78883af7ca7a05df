"""Time sends spent waiting for the rate limiter, shared across processes.

``waited_for_slots()`` is the one call the limiter makes (messaging.ratelimit.reserve,
for every reservation). It only adds to a counter in memory: a daemon thread moves
the counts to the cache (Redis when ``REDIS_URL`` is set, so every worker adds to
the same total) every ``FLUSH_SECONDS``, so a slow or unreachable cache never holds
up a send. /metrics reads the totals.
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
_thread: threading.Thread | None = None


def waited_for_slots(wait: float, interval: float, n: int) -> None:
    """Count ``n`` sends reserved together: the first waits ``wait`` seconds, each
    next one ``interval`` more."""
    total = n * wait + interval * n * (n - 1) / 2
    waiting = n if wait > 0 else max(0, n - 1) if interval > 0 else 0
    if total > 0 and waiting:
        waited(total, waiting)


def waited(seconds: float, sends: int = 1) -> None:
    """Count ``sends`` that waited ``seconds`` in all for a token (memory only)."""
    global _pending_us, _pending_n
    with _lock:
        _pending_us += int(seconds * 1_000_000)
        _pending_n += sends
    if _thread is None or not _thread.is_alive():
        _start()


def _start() -> None:
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        _thread = threading.Thread(target=_run, name="ratelimit-wait", daemon=True)
        _thread.start()


def _run() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        flush()


def _incr(key: str, n: int) -> None:
    try:
        cache.incr(key, n)
    except ValueError:
        if not cache.add(key, n, timeout=None):
            cache.incr(key, n)


def flush() -> None:
    """Move the pending counts to the cache (the thread's job; tests call it)."""
    global _pending_us, _pending_n
    with _lock:
        us, n = _pending_us, _pending_n
        _pending_us = _pending_n = 0
    if not n:
        return
    try:
        _incr(WAIT_KEY, us)
        _incr(COUNT_KEY, n)
    except Exception:
        # The cache is away: these counts are lost; sends are never held up for them.
        logger.warning("could not record the rate limiter's wait time", exc_info=True)


def totals() -> tuple[float, int]:
    """(seconds waited, number of waits) since the cache was last emptied."""
    flush()
    return (cache.get(WAIT_KEY) or 0) / 1_000_000, cache.get(COUNT_KEY) or 0
