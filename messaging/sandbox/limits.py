"""Rate limits and Random de-duplication of the sandbox.

Rate limits count calls in a sliding window, as the providers do, each call at the
moment it arrived: in Redis when REDIS_URL is set (shared by every process; one atomic
script per call), else in this process's memory (the embedded default, one process).
De-duplication keeps its keys in the Django cache (Redis in production and CI,
local memory otherwise), whose atomic ``add`` ("set if absent, with an expiry") is
all it needs.
"""

from __future__ import annotations

import collections
import functools
import secrets
import threading
import time
from typing import Any

import redis
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
KEY_PREFIX = "sandbox:rate"


def rate_limit(name: str) -> int:
    overrides = settings.SANDBOX_RATE_LIMITS
    defaults = {**DEFAULT_RATE_LIMITS, **TEST_ENVIRONMENT_RATE_LIMITS}
    return int(overrides.get(name, defaults[name]))


def rate_window() -> int:
    """Seconds a call is counted: 1 (a per-second limit). Tests lengthen it
    (SANDBOX_RATE_WINDOW) so that a slow machine cannot spread their burst over
    two windows."""
    return int(settings.SANDBOX_RATE_WINDOW)


# KEYS[1]: a sorted set of the calls counted (score: arrival, µs); ARGV: the limit,
# the window in µs, a member unique to this call, its arrival in µs. 1 if the call
# is allowed. One script, so a check and its count are one step: no other call can
# come between them.
_WINDOW_LUA = """
local at = tonumber(ARGV[4])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', at - window)
if redis.call('ZCOUNT', KEYS[1], at - window + 1, at) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], at, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return 1
"""


class _RedisWindows:
    def __init__(self, url: str) -> None:
        self._script = redis.Redis.from_url(url).register_script(_WINDOW_LUA)

    def take(self, key: str, limit: int, window: float, at: float) -> bool:
        member = secrets.token_hex(8)
        args: list[int | str] = [limit, int(window * 1e6), member, int(at * 1e6)]
        return bool(self._script(keys=[key], args=args))


class _LocalWindows:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, collections.deque[float]] = {}

    def take(self, key: str, limit: int, window: float, at: float) -> bool:
        with self._lock:
            calls = self._calls.setdefault(key, collections.deque())
            while calls and calls[0] <= at - window:
                calls.popleft()
            if sum(1 for t in calls if t <= at) >= limit:
                return False
            calls.append(at)
            return True


_local = _LocalWindows()


@functools.lru_cache(maxsize=4)
def _redis_windows(url: str) -> _RedisWindows:
    # redis-py's connection pool opens new connections in a forked child by itself.
    return _RedisWindows(url)


def _windows() -> _RedisWindows | _LocalWindows:
    url = settings.REDIS_URL
    return _redis_windows(url) if url else _local


def acquire(scope: str, name: str, at: float | None = None) -> bool:
    """Count one call of ``name`` for ``scope`` that arrived ``at`` (time.time(),
    default now): True while fewer than ``rate_limit(name)`` calls were counted in
    the ``rate_window()`` seconds before it, across threads and processes; False
    (and not counted) beyond.

    A provider counts a call when it arrives; the sandbox stamps it on arrival too,
    so the time its server spends before the check (a busy test process) does not
    bunch the calls it counts."""
    limit = rate_limit(name)
    if limit <= 0:
        return False
    if at is None:
        at = time.time()
    return _windows().take(f"{KEY_PREFIX}:{scope}:{name}", limit, rate_window(), at)


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
