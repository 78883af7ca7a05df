"""Send-rate limits per provider app and API, shared by every process that sends.

The providers count requests per app and per API: Tencent's live_engine
``send_text_msg`` and ``send_custom_msg`` allow 200/s each, ``send_broadcast_msg``
1/s, and ZEGO allows 100/s per AppId. An app may set a lower ``rate_limit``.

``acquire(app, kind)`` blocks until the caller may send one request. With
``REDIS_URL`` set the bucket lives in Redis and one Lua script takes the token
atomically, so every worker process on every machine draws from the same bucket
(Redis' own clock is used, so machines with skewed clocks still agree). Without
Redis (the embedded default: one process) a thread-safe in-process bucket does
the same.

Both buckets hand out reservations: taking a token may drive the bucket negative,
and the caller sleeps exactly until its reserved slot. That costs one Redis round
trip per send and never wakes a caller just to find the bucket still empty.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

import redis
from django.conf import settings

from messaging.kinds import KINDS, documented_rate

if TYPE_CHECKING:
    from messaging.models import ProviderApp

# No model import at run time: worker processes (and tests) use the buckets alone.

logger = logging.getLogger(__name__)

# Documented limits, requests per second per app, from the kinds' specs
# (messaging/kinds.py; sources in docs/providers.md).
DOCUMENTED_RATES: dict[str, float] = {
    kind: spec.documented_rate for kind, spec in KINDS.items()
}
# The provider counts requests in one-second windows. A steady rate exactly at the
# limit would still overrun some windows: reservations are taken here but arrive
# there after a variable network delay, which bunches them up. So the bucket is
# paced a little under the limit (RATE_LIMIT_HEADROOM) and holds a single token
# (RATE_LIMIT_BURST_SECONDS 0: no burst).

# Text and custom messages share one bucket (their spec's rate_bucket): both are
# live_engine APIs and counting them together can only keep a mixed load further
# under the limit.
BUCKETS: dict[str, str] = {kind: spec.rate_bucket for kind, spec in KINDS.items()}
KEY_PREFIX = "liveadmin:ratelimit"


def rate_per_second(app: ProviderApp, kind: str) -> float:
    """The documented rate of ``kind`` for ``app``, or the app's lower own limit."""
    documented = documented_rate(str(kind), test_environment=app.test_environment)
    if app.rate_limit:
        return min(documented, float(app.rate_limit))
    return documented


def pace_for(rate: float) -> float:
    """The rate the bucket refills at: the limit minus the headroom."""
    headroom = settings.RATE_LIMIT_HEADROOM
    return rate * (1.0 - headroom)


def burst_for(rate: float) -> float:
    """Bucket capacity in tokens, at least one."""
    seconds = settings.RATE_LIMIT_BURST_SECONDS
    return max(1.0, rate * seconds)


def bucket_key(app: ProviderApp, kind: str) -> str:
    # One bucket per provider app and API family, whichever process sends.
    return f"{KEY_PREFIX}:{app.provider}:{app.app_id}:{BUCKETS[str(kind)]}"


# KEYS[1] bucket hash; ARGV rate, capacity. Returns the seconds to wait (a string,
# since Lua numbers returned to Redis are truncated to integers).
_RESERVE_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate) - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
local wait = 0
if tokens < 0 then
  wait = -tokens / rate
end
redis.call('PEXPIRE', KEYS[1], math.ceil((wait + capacity / rate) * 1000) + 60000)
return tostring(wait)
"""


class RedisTokenBucket:
    """A token bucket in Redis, shared by all processes using the same server."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._reserve = client.register_script(_RESERVE_LUA)

    def reserve(self, key: str, rate: float, capacity: float) -> float:
        """Take one token; return how many seconds to wait before using it."""
        return float(self._reserve(keys=[key], args=[repr(rate), repr(capacity)]))

    def acquire(self, key: str, rate: float, capacity: float) -> None:
        wait = self.reserve(key, rate, capacity)
        if wait > 0:
            time.sleep(wait)


class LocalTokenBucket:
    """The same bucket in process memory, for the embedded default (no Redis)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}

    def reserve(self, key: str, rate: float, capacity: float) -> float:
        with self._lock:
            now = time.monotonic()
            tokens, ts = self._state.get(key, (capacity, now))
            tokens = min(capacity, tokens + max(0.0, now - ts) * rate) - 1
            self._state[key] = (tokens, now)
        return -tokens / rate if tokens < 0 else 0.0

    def acquire(self, key: str, rate: float, capacity: float) -> None:
        wait = self.reserve(key, rate, capacity)
        if wait > 0:
            time.sleep(wait)


_local_bucket = LocalTokenBucket()
_redis_buckets: dict[tuple[int, str], RedisTokenBucket] = {}
_redis_lock = threading.Lock()


def get_bucket() -> RedisTokenBucket | LocalTokenBucket:
    """Redis when REDIS_URL is set, else the in-process bucket.

    One Redis client per process (keyed by pid so a forked worker child never
    shares its parent's sockets).
    """
    url = settings.REDIS_URL
    if not url:
        return _local_bucket
    key = (os.getpid(), url)
    bucket = _redis_buckets.get(key)
    if bucket is None:
        with _redis_lock:
            bucket = _redis_buckets.get(key)
            if bucket is None:
                bucket = RedisTokenBucket(redis.Redis.from_url(url))
                _redis_buckets[key] = bucket
    return bucket


def acquire(app: ProviderApp, kind: str) -> None:
    """Block until ``app`` may make one ``kind`` request without exceeding its rate."""
    rate = pace_for(rate_per_second(app, kind))
    key, capacity = bucket_key(app, kind), burst_for(rate)
    bucket = get_bucket()
    try:
        bucket.acquire(key, rate, capacity)
    except redis.RedisError as exc:
        # Redis unreachable: keep this process within the rate rather than fail
        # the send; the provider's own limit answer is retried if several
        # processes together overshoot meanwhile.
        logger.warning("rate limiter: Redis unavailable (%s); limiting in-process", exc)
        _local_bucket.acquire(key, rate, capacity)
