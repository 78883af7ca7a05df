"""/metrics in the Prometheus text format, from the counts every process shares.

The figures come from the overview's counts in the database (and the rate
limiter's wait totals in the cache), so any web process answers for the whole
deployment: no per-process registry, no multiprocess directory. A scrape first
brings the counts up to date (a bounded rollup run).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from liveadmin import limiter_wait
from liveadmin.models import Metric as Counted
from liveadmin.models import Span, Tally

# Histogram bounds (seconds). The webhook counts decision times in buckets 10% wide
# (webhooks/recent.py); each goes under the first bound at or above its upper edge,
# so a time near a bound may be counted one bound higher, never lower.
BOUNDS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def enabled() -> bool:
    return bool(settings.METRICS_TOKEN or settings.METRICS_ALLOWED_IPS)


def allowed(request: HttpRequest) -> bool:
    """A matching ``Authorization: Bearer <METRICS_TOKEN>``, or a client address in
    ``METRICS_ALLOWED_IPS`` (the peer address: put the list behind your proxy's
    own network, not a header the client controls)."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if (
        token
        and header.startswith("Bearer ")
        and hmac.compare_digest(header[7:].strip().encode(), token.encode())
    ):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for entry in settings.METRICS_ALLOWED_IPS:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _totals(metric: str, *group: str) -> list[dict]:
    return list(
        Tally.objects.filter(metric=metric, span=Span.TOTAL)
        .order_by()
        .values(*group)
        .annotate(n=Sum("count"))
        .order_by(*group)
    )


class LiveAdminCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        from messaging.models import ProviderApp, SendRecord

        names = dict(ProviderApp.objects.values_list("pk", "name"))

        sends = CounterMetricFamily(
            "liveadmin_sends",
            "Answered sends by app, kind and outcome.",
            labels=["app", "kind", "outcome"],
        )
        for row in _totals(Counted.SEND, "app_id", "kind", "outcome"):
            app = names.get(row["app_id"], str(row["app_id"]))
            sends.add_metric([app, row["kind"], row["outcome"]], row["n"])
        yield sends

        decisions = CounterMetricFamily(
            "liveadmin_webhook_decisions",
            "Before-send webhook answers by app and action.",
            labels=["app", "action"],
        )
        for row in _totals(Counted.DECISION, "app_id", "outcome"):
            app = names.get(row["app_id"], str(row["app_id"]))
            decisions.add_metric([app, row["outcome"]], row["n"])
        yield decisions

        per_bound = [0] * (len(BOUNDS_S) + 1)  # the last one: above every bound
        for row in _totals(Counted.LATENCY, "code"):
            upper_s = row["code"] / 1_000_000
            i = next((i for i, b in enumerate(BOUNDS_S) if upper_s <= b), len(BOUNDS_S))
            per_bound[i] += row["n"]
        cumulative, points = 0, []
        for bound, n in zip(BOUNDS_S, per_bound, strict=False):
            cumulative += n
            points.append((str(bound), cumulative))
        points.append(("+Inf", cumulative + per_bound[-1]))
        # No _sum: the webhook keeps bucket counts, not the times themselves.
        yield HistogramMetricFamily(
            "liveadmin_webhook_latency_seconds",
            "Time the before-send webhook took to decide.",
            buckets=points,
        )

        waiting = SendRecord.objects.filter(
            batch__isnull=False, outcome="waiting"
        ).count()
        yield GaugeMetricFamily(
            "liveadmin_batch_rows_waiting",
            "Rooms of batches not yet answered.",
            value=waiting,
        )

        seconds, waits = limiter_wait.totals()
        yield CounterMetricFamily(
            "liveadmin_ratelimit_wait_seconds",
            "Time sends waited for a rate-limiter token.",
            value=seconds,
        )
        yield CounterMetricFamily(
            "liveadmin_ratelimit_waits",
            "Sends that waited for a rate-limiter token.",
            value=waits,
        )
