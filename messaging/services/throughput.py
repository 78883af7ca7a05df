"""How long a batch will take: the app's measured recent throughput, else its limit.

The preview promises a duration; it uses what the app's recent batches of the
same kind actually achieved (rooms answered per second of running time), never
more than the rate limit allows.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from messaging import ratelimit
from messaging.models import Batch, BatchStatus, ProviderApp

# Batches shorter than this say little about throughput (start-up dominates).
MIN_MEASURED_ROOMS = 50
RECENT_BATCHES = 5
RECENT_DAYS = 30


def measured_rate(app: ProviderApp, kind: str) -> float | None:
    """Rooms per second of the app's last finished batches of ``kind``, or None."""
    since = timezone.now() - timedelta(days=RECENT_DAYS)
    recent = (
        Batch.objects.filter(
            app=app,
            kind=kind,
            status=BatchStatus.DONE,
            room_count__gte=MIN_MEASURED_ROOMS,
            started_at__isnull=False,
            finished_at__gte=since,
        )
        .order_by("-finished_at")
        .values_list("room_count", "started_at", "finished_at")[:RECENT_BATCHES]
    )
    rooms = seconds = 0.0
    for count, started, finished in recent:
        assert started is not None and finished is not None  # filtered above
        rooms += count
        seconds += max(0.001, (finished - started).total_seconds())
    return rooms / seconds if rooms else None


def estimate_seconds(app: ProviderApp, kind: str, count: int) -> float:
    """How long ``count`` sends take at the measured rate (or the rate limit)."""
    return count / expected_rate(app, kind)


def expected_rate(app: ProviderApp, kind: str) -> float:
    limit = ratelimit.rate_per_second(app, kind)
    measured = measured_rate(app, kind)
    return min(limit, measured) if measured else limit


def describe_estimate(app: ProviderApp, kind: str, count: int) -> str:
    """E.g. "2,000 rooms at 200/s: about 10 s", or "... at about 187/s (measured)"."""
    limit = ratelimit.rate_per_second(app, kind)
    measured = measured_rate(app, kind)
    rate = min(limit, measured) if measured else limit
    seconds = math.ceil(count / rate)
    if seconds < 120:
        duration = _("%(n)s s") % {"n": seconds}
    else:
        duration = _("%(n)s min") % {"n": math.ceil(seconds / 60)}
    if measured:
        return ngettext(
            "%(count)s room at about %(rate)s/s (measured on this app's recent "
            "batches; the limit is %(limit)s/s): about %(duration)s",
            "%(count)s rooms at about %(rate)s/s (measured on this app's recent "
            "batches; the limit is %(limit)s/s): about %(duration)s",
            count,
        ) % {
            "count": f"{count:,}",
            "rate": f"{rate:.0f}",
            "limit": f"{limit:g}",
            "duration": duration,
        }
    return ngettext(
        "%(count)s room at %(rate)s/s: about %(duration)s",
        "%(count)s rooms at %(rate)s/s: about %(duration)s",
        count,
    ) % {"count": f"{count:,}", "rate": f"{rate:g}", "duration": duration}
