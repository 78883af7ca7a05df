"""Rate limits and Random de-duplication of the sandbox, kept in the Django cache.

The cache is Redis in production and CI (shared by every process) and local memory
otherwise (shared by the threads of one process). Both implement ``add`` atomically
("set if absent, with an expiry"), which is all these need.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.cache import cache

# Documented limits (requests or messages per second; docs/providers.md, "Rates"). SANDBOX_RATE_LIMITS in the
# settings overrides single entries, e.g. in tests.
DEFAULT_RATE_LIMITS: dict[str, int] = {
    "live_engine": 200,  # send_text_msg / send_custom_msg, per app
    "broadcast": 1,  # send_broadcast_msg, per app
    "zego": 100,  # SendCustomCommand, per AppId
    "room": 40,  # messages per room (Use Limits 1047/34381)
}
# ZEGO's test environment (IsTest=true) has its own, lower limit.
TEST_ENVIRONMENT_RATE_LIMITS: dict[str, int] = {"zego_test": 10}
DEDUP_SECONDS = 300


def rate_limit(name: str) -> int:
    overrides = settings.SANDBOX_RATE_LIMITS
    defaults = {**DEFAULT_RATE_LIMITS, **TEST_ENVIRONMENT_RATE_LIMITS}
    return int(overrides.get(name, defaults[name]))


def rate_window() -> int:
    """Seconds a slot is held: 1 (a per-second limit). Tests lengthen it
    (SANDBOX_RATE_WINDOW) so that a slow machine cannot spread their burst over
    two windows."""
    return int(settings.SANDBOX_RATE_WINDOW)


def acquire(scope: str, name: str) -> bool:
    """Take one of the ``rate_limit(name)`` slots of ``scope`` for one window.

    Each slot is a cache key added with a one-second expiry, so at most N calls
    succeed in any sliding window of one second, across threads and processes,
    without a read-modify-write race. A random starting slot keeps the usual case
    to one round trip; only a full window probes every slot.
    """
    limit, window = rate_limit(name), rate_window()
    if limit <= 0:
        return False
    start = secrets.randbelow(limit)
    for i in range(limit):
        slot = (start + i) % limit
        if cache.add(f"sandbox:rate:{scope}:{name}:{slot}", 1, timeout=window):
            return True
    return False


def claim_once(
    scope: str, key: str, *, seconds: int = DEDUP_SECONDS
) -> tuple[bool, Any]:
    """First claim of ``key`` within ``seconds``: (True, None); later: (False, value)."""
    cache_key = f"sandbox:dedup:{scope}:{key}"
    if cache.add(cache_key, 0, timeout=seconds):
        return True, None
    return False, cache.get(cache_key)


def remember(scope: str, key: str, value: Any, *, seconds: int = DEDUP_SECONDS) -> None:
    cache.set(f"sandbox:dedup:{scope}:{key}", value, timeout=seconds)


def forget(scope: str, key: str) -> None:
    cache.delete(f"sandbox:dedup:{scope}:{key}")
