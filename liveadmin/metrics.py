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
from liveadmin.latency import BUCKETS_MS, SUM_CODE
from liveadmin.models import Metric as Counted
from liveadmin.models import Span, Tally


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

        buckets = {r["code"]: r["n"] for r in _totals(Counted.LATENCY, "code")}
        cumulative, points = 0, []
        for bound in BUCKETS_MS:
            cumulative += buckets.get(bound, 0)
            points.append((str(bound / 1000), cumulative))
        points.append(("+Inf", cumulative + buckets.get(0, 0)))
        yield HistogramMetricFamily(
            "liveadmin_webhook_latency_seconds",
            "Time the before-send webhook took to decide.",
            buckets=points,
            sum_value=buckets.get(SUM_CODE, 0) / 1_000_000,
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
