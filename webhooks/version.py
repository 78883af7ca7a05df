"""The rules version: how a moderator's change reaches every web process.

Every change (an entry, a list, a provider app) bumps a row in the database and,
once the transaction commits, increments a counter in Redis. Web processes read
the counter (a Redis GET, or a database read when there is no Redis) at most every
``WEBHOOK_VERSION_CHECK_SECONDS`` and rebuild their in-memory rules when it moved.

The Redis counter is only a change signal, compared with the value a process last
saw; it is incremented after commit, so a process that sees it move and rebuilds
always reads the committed change. INCR never goes backwards, so two changes
published out of order cannot hide one another.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

logger = logging.getLogger(__name__)

REDIS_KEY = "liveadmin:webhooks:rules-version"
_redis: Any = None
# Changes made by this process: its own rules cache rebuilds at once when this moves
# (webhooks/rules_cache.py reads it; this module imports nothing of the hot path).
_local_changes = 0


def local_changes() -> int:
    return _local_changes


def redis_client() -> Any:
    """One Redis client per process, or None without REDIS_URL."""
    global _redis
    url = settings.REDIS_URL
    if not url:
        return None
    if _redis is None:
        import redis

        # Short timeouts: the hot path falls back to the database if Redis stalls.
        _redis = redis.Redis.from_url(
            url, socket_timeout=0.25, socket_connect_timeout=0.25
        )
    return _redis


def database_version() -> int:
    from webhooks.models import RulesVersion

    return (
        RulesVersion.objects.filter(pk=1).values_list("version", flat=True).first() or 0
    )


def current_token() -> str:
    """A cheap value that changes whenever the rules change."""
    client = redis_client()
    if client is not None:
        try:
            value = client.get(REDIS_KEY)
            return "r" + (value.decode() if value is not None else "0")
        except Exception:
            logger.warning("Redis unreachable; reading the rules version from the DB")
    return f"d{database_version()}"


def publish() -> None:
    """Tell the other processes (after commit)."""
    client = redis_client()
    if client is None:
        return
    try:
        client.incr(REDIS_KEY)
    except Exception:
        # The database version still moves, so processes reading it catch up; those
        # reading Redis catch up at the next publish. Logged so an operator sees it.
        logger.exception("could not publish the rules version to Redis")


def bump() -> None:
    """Record that the rules changed: DB row now, Redis signal on commit."""
    global _local_changes
    from webhooks.models import RulesVersion

    if not RulesVersion.objects.filter(pk=1).update(version=F("version") + 1):
        RulesVersion.objects.get_or_create(pk=1, defaults={"version": 2})
    transaction.on_commit(publish)
    # This process sees its own change at once (its connection reads it even inside
    # the transaction); if the transaction rolls back, the next version check fixes it.
    _local_changes += 1
