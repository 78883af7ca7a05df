"""Send-rate limits per provider app and API, shared by every process that sends.

The providers count requests per app and per API: Tencent's live_engine
``send_text_msg`` and ``send_custom_msg`` allow 200/s each, ``send_broadcast_msg``
1/s, and ZEGO allows 100/s per AppId. An app may set a lower ``rate_limit``.

``acquire(app, kind)`` blocks until the caller may send one request;
``reserve(app, kind, n)`` reserves n sends at once for a bulk sender. With
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

import collections
import contextlib
import logging
import math
import os
import socket
import threading
import time
from typing import TYPE_CHECKING

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from liveadmin import limiter_wait
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


# Redis unreachable: each process falls back to its share of the budget, the rate
# divided by the number of processes seen drawing from the bucket in the last
# PEER_SECONDS (remembered from the last answer), and never fewer than
# settings.RATE_LIMIT_FALLBACK_PEERS: a peer that had not drawn lately is not seen.
PEER_SECONDS = 10.0
# The provider counts requests in a sliding window of this many seconds.
WINDOW_SECONDS = 1.0


# KEYS[1] bucket hash, KEYS[2] sorted set of the processes drawing from it;
# ARGV rate, capacity, tokens wanted, this process's id, PEER_SECONDS. Returns
# "<seconds to wait for the first token> <processes seen>" (a string, since Lua
# numbers returned to Redis are truncated to integers).
_RESERVE_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
end
tokens = tokens - wanted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
local ttl = math.ceil((wait + (wanted + capacity) / rate) * 1000) + 60000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[2], ttl)
return tostring(wait) .. ' ' .. tostring(redis.call('ZCARD', KEYS[2]))
"""


class RedisTokenBucket:
    """A token bucket in Redis, shared by all processes using the same server."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._reserve = client.register_script(_RESERVE_LUA)
        self.member = f"{socket.gethostname()}:{os.getpid()}"
        # Processes drawing from each bucket, as last seen (for the fallback share).
        self.peers: dict[str, int] = {}

    def reserve(self, key: str, rate: float, capacity: float, n: int = 1) -> float:
        """Take ``n`` tokens; return the seconds to wait before using the first (the
        next ones follow every 1/rate seconds)."""
        answer = self._reserve(
            keys=[key, f"{key}:peers"],
            args=[repr(rate), repr(capacity), n, self.member, PEER_SECONDS],
        )
        wait, peers = (answer.decode() if isinstance(answer, bytes) else answer).split()
        self.peers[key] = max(1, int(peers))
        return float(wait)

    def acquire(self, key: str, rate: float, capacity: float) -> None:
        wait = self.reserve(key, rate, capacity)
        if wait > 0:
            time.sleep(wait)


class LocalTokenBucket:
    """The same bucket in process memory, for the embedded default (no Redis)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}

    def reserve(self, key: str, rate: float, capacity: float, n: int = 1) -> float:
        with self._lock:
            now = time.monotonic()
            tokens, ts = self._state.get(key, (capacity, now))
            tokens = min(capacity, tokens + max(0.0, now - ts) * rate)
            self._state[key] = (tokens - n, now)
        return (1 - tokens) / rate if tokens < 1 else 0.0

    def acquire(self, key: str, rate: float, capacity: float) -> None:
        wait = self.reserve(key, rate, capacity)
        if wait > 0:
            time.sleep(wait)

    def set(self, key: str, tokens: float, at: float) -> None:
        with self._lock:
            self._state[key] = (tokens, at)


_local_bucket = LocalTokenBucket()
_redis_buckets: dict[tuple[int, str], RedisTokenBucket] = {}
_redis_lock = threading.Lock()


def get_bucket() -> RedisTokenBucket | LocalTokenBucket:
    """Redis when REDIS_URL is set, else the in-process bucket.

    One Redis client per process (keyed by pid so a forked worker child never
    shares its parent's sockets), with short timeouts: a Redis that hangs must
    not hold the senders longer than one that is down.
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
                # No client-side retries: a failed call falls back at once.
                bucket = RedisTokenBucket(
                    redis.Redis.from_url(
                        url,
                        socket_connect_timeout=1.0,
                        socket_timeout=1.0,
                        retry=Retry(NoBackoff(), 0),
                    )
                )
                _redis_buckets[key] = bucket
    return bucket


_degraded: set[str] = set()  # buckets this process is sending at its share of
# Where this process's last reserved slot ends, per bucket: a switch between Redis
# and the in-process share starts after it, so the two schedules never overlap.
_last_slot: dict[str, float] = {}
# The slots this process took at its share in the last second, per bucket: when Redis
# returns (its bucket knows nothing of them, or is new), they are counted in it, so
# the provider's one-second window never holds both the shares' sends and a full
# second of the shared pace.
_share_slots: dict[str, collections.deque[float]] = {}
# In-process share: reserve at most this many seconds ahead, so a process whose
# Redis comes back holds few tokens the others do not know about.
SHARE_AHEAD_SECONDS = 0.05


def reserve(app: ProviderApp, kind: str, n: int = 1) -> tuple[float, float, int]:
    """Reserve up to ``n`` sends of ``kind`` for ``app`` within its rate.

    Returns (the time.monotonic() at which the first may go, seconds between the
    next ones, how many were reserved); the time they wait is counted for /metrics
    (liveadmin/limiter_wait.py).
    """
    start, interval, count = _reserve(app, kind, n)
    limiter_wait.waited_for_slots(max(0.0, start - time.monotonic()), interval, count)
    return start, interval, count


def _reserve(app: ProviderApp, kind: str, n: int) -> tuple[float, float, int]:
    """(the time.monotonic() at which the first may go, seconds between the next
    ones, how many were reserved). With Redis unreachable, this process falls
    back to its share of the rate in an in-process bucket (see PEER_SECONDS), so
    processes that share a budget never take the whole budget each.
    """
    rate = pace_for(rate_per_second(app, kind))
    key, capacity = bucket_key(app, kind), burst_for(rate)
    bucket = get_bucket()
    asked = time.monotonic()
    try:
        # The bucket's schedule counts from before the round trip: a slow answer
        # makes the first slot late, never later than the bucket meant.
        wait = bucket.reserve(key, rate, capacity, n)
    except redis.RedisError as exc:
        assert isinstance(bucket, RedisTokenBucket)
        # Never fewer than the configured floor: a process that drew from the bucket
        # less than PEER_SECONDS ago, or one starting now, may not have been counted.
        peers = max(bucket.peers.get(key, 0), settings.RATE_LIMIT_FALLBACK_PEERS)
        share = rate / max(1, peers)
        now = time.monotonic()
        if key not in _degraded:
            _degraded.add(key)
            # Start the share after the slots Redis already gave this process, and
            # after those it may have given the others (a runner reserves up to a
            # group ahead): until then the bucket's whole pace may be theirs.
            ahead = bucket.peers.get(key, 1) * settings.BATCH_GROUP_SIZE / rate
            behind = max(0.0, _last_slot.get(key, now) - now, ahead)
            _local_bucket.set(f"{key}:share", -behind * share, now)
            logger.warning(
                "rate limiter: Redis unavailable (%s); this process keeps to its "
                "share, %.1f/s (1/%s of the rate)",
                type(exc).__name__,
                share,
                peers,
            )
        n = max(1, min(n, int(share * SHARE_AHEAD_SECONDS)))
        start = now + _local_bucket.reserve(f"{key}:share", share, 1.0, n)
        _last_slot[key] = start + n / share
        slots = _share_slots.setdefault(key, collections.deque())
        slots.extend(start + i / share for i in range(n))
        while slots and slots[0] < now - WINDOW_SECONDS:
            slots.popleft()
        return start, 1.0 / share, n
    start = asked + wait
    if key in _degraded:
        _degraded.discard(key)
        behind = max(0.0, _last_slot.get(key, start) - start)
        # The slots of its share this process used in the last second, and those it
        # still has ahead: the bucket must count them, or the others would be handed
        # the same moments (over the provider's limit right after Redis returns).
        recent = sum(
            1 for at in _share_slots.pop(key, ()) if at > asked - WINDOW_SECONDS
        )
        owed = recent + math.ceil(behind * rate)
        if owed:
            # Taken after the n just reserved: the bucket hands the others their next
            # slots only after both. This process sends its n where the bucket put
            # them, unless its share's last slot is later; either way within the
            # time the bucket reserved for it (placing them after the owed slots
            # instead would give them the moments the bucket hands the next caller).
            with contextlib.suppress(redis.RedisError):
                bucket.reserve(key, rate, capacity, owed)
            start += behind
        logger.warning("rate limiter: Redis is back; sharing the bucket again")
    _last_slot[key] = start + n / rate
    return start, 1.0 / rate, n


def acquire(app: ProviderApp, kind: str) -> None:
    """Block until ``app`` may make one ``kind`` request without exceeding its rate."""
    start, _, _ = reserve(app, kind)
    wait = start - time.monotonic()
    if wait > 0:
        time.sleep(wait)
