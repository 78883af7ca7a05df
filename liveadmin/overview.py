"""The figures of each role's home page, read from the counts (liveadmin.models),
never from the logs themselves (see liveadmin.rollup)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from liveadmin.charts import Chart, Series, stacked_bars
from liveadmin.models import LastSend, Metric, Span, Tally
from liveadmin.rollup import floor_day, floor_hour, floor_minute


@dataclass(frozen=True)
class Range:
    key: str
    label: str | Promise
    length: timedelta
    # The counts a chart reads, and how wide one bar is.
    span: Span
    bucket: timedelta
    # The counts the failure list reads (whole hours / days at the far end).
    top_span: Span
    # The top lists read minutes (None) or a sliding window of whole hours.
    window: Span | None


RANGES: dict[str, Range] = {
    r.key: r
    for r in (
        Range(
            "hour",
            _("Last hour"),
            timedelta(hours=1),
            Span.MINUTE,
            timedelta(minutes=1),
            Span.MINUTE,
            None,
        ),
        Range(
            "day",
            _("Last 24 hours"),
            timedelta(days=1),
            Span.HOUR,
            timedelta(hours=1),
            Span.HOUR,
            Span.LAST_DAY,
        ),
        Range(
            "week",
            _("Last 7 days"),
            timedelta(days=7),
            Span.HOUR,
            timedelta(hours=6),
            Span.DAY,
            Span.LAST_WEEK,
        ),
    )
}
DEFAULT_RANGE = "day"
FLOOR = {Span.MINUTE: floor_minute, Span.HOUR: floor_hour, Span.DAY: floor_day}

# Outcomes in chart order, with the CSS class that colours them.
OUTCOME_STYLE = {
    "ok": "s-ok",
    "dropped": "s-warn",
    "unknown": "s-unknown",
    "cancelled": "s-muted",
    "failed": "s-bad",
}
ACTION_STYLE = {
    "allow": "s-ok",
    "mask": "s-warn",
    "flag": "s-unknown",
    "discard": "s-muted",
    "forbid": "s-bad",
    "forbid_code": "s-bad2",
}


def outcome_name(outcome: str) -> str | Promise:
    """A send outcome as people read it (the Outcome choices of messaging)."""
    from messaging.models import Outcome

    try:
        return Outcome(outcome).label
    except ValueError:
        return outcome


def action_name(action: str) -> str | Promise:
    """A webhook decision's action as the decision log calls it."""
    from webhooks.vocabulary import DECISION_LABELS

    if action == "allow":
        return _("Allowed")
    if action not in DECISION_LABELS:
        return action
    # The vocabulary is Django-free: its labels are msgids, translated here.
    return gettext(str(DECISION_LABELS[action]))


def get_range(key: str | None) -> Range:
    return RANGES.get(key or "", RANGES[DEFAULT_RANGE])


def _buckets(rng: Range, now: datetime) -> list[datetime]:
    """Bucket starts covering the range, oldest first, the last one holding ``now``."""
    if rng.bucket >= timedelta(hours=1):
        hours = int(rng.bucket.total_seconds() // 3600)
        last = floor_hour(now)
        last -= timedelta(hours=last.hour % hours)
    else:
        last = floor_minute(now)
    count = int(rng.length / rng.bucket)
    return [last - rng.bucket * i for i in range(count - 1, -1, -1)]


def _bucket_index(buckets: list[datetime], at: datetime) -> int | None:
    if not buckets or at < buckets[0]:
        return None
    step = buckets[1] - buckets[0] if len(buckets) > 1 else timedelta(minutes=1)
    i = int((at - buckets[0]) / step)
    return i if i < len(buckets) else None


def time_chart(
    title: str | Promise,
    metric: str,
    rng: Range,
    by: str,
    styles: dict[str, str],
    filters: Q | None = None,
    *,
    now: datetime | None = None,
    names: Callable[[str], str | Promise] = str,
) -> Chart:
    """Counts of ``metric`` per bucket of the range, one series per value of ``by``."""
    now = now or timezone.now()
    buckets = _buckets(rng, now)
    rows = (
        Tally.objects.filter(metric=metric, span=rng.span, start__gte=buckets[0])
        .filter(filters or Q())
        .order_by()
        .values_list("start", by)
        .annotate(n=Sum("count"))
    )
    values: dict[str, list[float]] = defaultdict(lambda: [0] * len(buckets))
    for start, label, n in rows:
        i = _bucket_index(buckets, start)
        if i is not None:
            values[label][i] += n
    order = [k for k in styles if k in values] + sorted(
        k for k in values if k not in styles
    )
    series = [
        Series(label, styles.get(label, "s-muted"), values[label], names(label))
        for label in order
    ]
    return stacked_bars(Chart(title=title, buckets=buckets, series=series))


def _since(rng: Range, span: Span, now: datetime) -> datetime:
    return FLOOR[span](now - rng.length)


def top(
    metric: str,
    rng: Range,
    group: tuple[str, ...],
    *,
    limit: int = 10,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The largest counts of ``metric`` in the range, summed by ``group``."""
    now = now or timezone.now()
    if rng.window is None:
        rows = Tally.objects.filter(
            metric=metric, span=Span.MINUTE, start__gte=_since(rng, Span.MINUTE, now)
        )
    else:
        # A window holds one row per sender (app, key) or entry (code): the
        # (metric, span, -count) index hands over the largest first.
        rows = Tally.objects.filter(metric=metric, span=rng.window, count__gt=0)
        return list(rows.order_by("-count").values(*group, n=F("count"))[:limit])
    return list(
        rows.order_by()
        .values(*group)
        .annotate(n=Sum("count"))
        .order_by("-n", *group)[:limit]
    )


# --- community managers ---------------------------------------------------------


def manager_figures(user: Any, rng: Range) -> dict[str, Any]:
    from messaging.models import Batch, BatchStatus, ProviderApp
    from messaging.providers import explain

    mine = Q(user_id=user.pk)
    chart = time_chart(
        _("Your sends by outcome"),
        Metric.SEND,
        rng,
        "outcome",
        OUTCOME_STYLE,
        mine,
        names=outcome_name,
    )
    now = timezone.now()
    failures: list[dict[str, Any]] = [
        dict(row)
        for row in Tally.objects.filter(
            mine,
            metric=Metric.SEND,
            span=rng.top_span,
            start__gte=_since(rng, rng.top_span, now),
        )
        .exclude(outcome="ok")
        .order_by()
        .values("app_id", "outcome", "code")
        .annotate(n=Sum("count"))
        .order_by("-n")[:20]
    ]
    apps = ProviderApp.objects.in_bulk({f["app_id"] for f in failures})
    for f in failures:
        app = apps.get(f["app_id"])
        f["app"] = app
        f["outcome_name"] = outcome_name(f["outcome"])
        f["explanation"] = explain(app.provider, f["code"]) if app and f["code"] else ""
    batches = list(
        Batch.objects.filter(
            created_by=user,
            status__in=[BatchStatus.RUNNING, BatchStatus.SCHEDULED, BatchStatus.PAUSED],
        )
        .select_related("app")
        .order_by("scheduled_at", "-created_at")[:20]
    )
    awaiting = list(
        Batch.objects.filter(status=BatchStatus.AWAITING_APPROVAL)
        .select_related("app", "created_by")
        .order_by("created_at")[:20]
    )
    return {
        "chart": chart,
        "failures": failures,
        "batches": batches,
        "awaiting": awaiting,
    }


# --- moderators -------------------------------------------------------------------


def latency_summary(rng: Range, *, now: datetime | None = None) -> dict[str, Any]:
    """p50 / p95 / p99 of the webhook's decision time (the upper bound of the bucket
    holding each, in ms) and the count over the provider's 2 s budget."""
    from webhooks.recent import BUDGET_US

    now = now or timezone.now()
    rows = sorted(
        Tally.objects.filter(
            metric=Metric.LATENCY, span=rng.span, start__gte=_since(rng, rng.span, now)
        )
        .order_by()
        .values_list("code")
        .annotate(n=Sum("count"))
        .values_list("code", "n")
    )
    total = sum(n for _, n in rows)
    summary: dict[str, Any] = {
        "total": total,
        "budget_ms": BUDGET_US // 1000,
        "over_budget": sum(n for bound, n in rows if bound > BUDGET_US),
    }
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        summary[name] = None
        seen = 0
        for bound_us, n in rows:
            seen += n
            if total and seen >= q * total:
                summary[name] = round(bound_us / 1000, 1)
                break
    p99 = summary["p99"]
    summary["within_budget"] = p99 is not None and p99 * 1000 <= BUDGET_US
    return summary


def moderator_figures(rng: Range) -> dict[str, Any]:
    from messaging.models import ProviderApp
    from webhooks.models import BlocklistEntry

    chart = time_chart(
        _("Webhook decisions by action"),
        Metric.DECISION,
        rng,
        "outcome",
        ACTION_STYLE,
        names=action_name,
    )
    entries = top(Metric.ENTRY, rng, ("code",))
    known = BlocklistEntry.objects.select_related("blocklist").in_bulk(
        [e["code"] for e in entries]
    )
    for e in entries:
        e["entry"] = known.get(e["code"])
    senders = top(Metric.SENDER, rng, ("app_id", "key"))
    apps = ProviderApp.objects.in_bulk({s["app_id"] for s in senders})
    for s in senders:
        s["app"] = apps.get(s["app_id"])
    return {
        "chart": chart,
        "entries": entries,
        "senders": senders,
        "latency": latency_summary(rng),
    }


# --- auditors ---------------------------------------------------------------------


def auditor_figures(rng: Range) -> dict[str, Any]:
    chart = time_chart(
        _("Send log volume by outcome"),
        Metric.VOLUME,
        rng,
        "outcome",
        OUTCOME_STYLE,
        names=outcome_name,
    )
    failed = next((s.values for s in chart.series if s.label == "failed"), None)
    totals = [sum(s.values[i] for s in chart.series) for i in range(len(chart.buckets))]
    chart.extra[_("Failure rate")] = [
        f"{number_format(100 * failed[i] / t, 1)} %" if failed and t else "–"
        for i, t in enumerate(totals)
    ]
    total = sum(totals)
    return {
        "chart": chart,
        "total": total,
        "failure_rate": (100 * sum(failed) / total) if failed and total else 0.0,
    }


# --- administrators ---------------------------------------------------------------


def admin_figures() -> dict[str, Any]:
    from messaging.models import ProviderApp, SendRecord

    apps = list(ProviderApp.objects.order_by("name"))
    last: dict[int, dict[str, LastSend]] = defaultdict(dict)
    for row in LastSend.objects.filter(app_id__in=[a.pk for a in apps]):
        last[row.app_id][row.outcome] = row
    checks = SendRecord.objects.in_bulk(
        [seen["check"].record_id for seen in last.values() if "check" in seen]
    )
    rows = []
    for app in apps:
        seen = last.get(app.pk, {})
        failures = [r for o, r in seen.items() if o not in ("ok", "check")]
        last_failure = max(failures, key=lambda r: r.record_id, default=None)
        check = seen.get("check")
        rows.append(
            {
                "app": app,
                "last_ok": seen.get("ok"),
                "last_failure": last_failure,
                "last_failure_name": outcome_name(last_failure.outcome)
                if last_failure
                else "",
                "check": checks.get(check.record_id) if check else None,
            }
        )
    return {"apps": rows}
