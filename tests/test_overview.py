from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from liveadmin.models import LastSend, Metric, PendingSend, Span, Tally
from liveadmin.rollup import floor_minute, rollup
from messaging.models import SendRecord
from tests.conftest import client_for
from tests.factories import make_app, make_send_record
from webhooks.models import (
    Blocklist,
    BlocklistEntry,
    Decision,
    DecisionCount,
    LatencyCount,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def count_on_view(settings):
    """The page counts what is new itself (no Celery beat in these tests)."""
    settings.OVERVIEW_ROLLUP_ON_VIEW = True


def _ago(**kw) -> timezone.datetime:
    return timezone.now() - timedelta(**kw)


def _sum(**filters) -> int:
    return sum(Tally.objects.filter(**filters).values_list("count", flat=True))


def test_it_counts_answered_sends_per_minute_hour_day_and_total(manager):
    app = make_app()
    at = _ago(minutes=3)
    for _ in range(3):
        make_send_record(app=app, user=manager, created_at=at)
    make_send_record(
        app=app, user=manager, created_at=at, outcome="failed", error_code=10017
    )
    waiting = make_send_record(
        app=app, user=manager, created_at=at, outcome="waiting", error_code=None
    )

    assert rollup()["sends"] == 4
    for span in (Span.MINUTE, Span.HOUR, Span.DAY, Span.TOTAL):
        assert _sum(metric=Metric.SEND, span=span, outcome="ok") == 3
        assert _sum(metric=Metric.SEND, span=span, outcome="failed", code=10017) == 1
    minute = Tally.objects.get(metric=Metric.SEND, span=Span.MINUTE, outcome="ok")
    assert minute.start == floor_minute(at)
    assert (minute.app_id, minute.user_id, minute.kind) == (app.pk, manager.pk, "text")
    assert list(PendingSend.objects.values_list("record_id", flat=True)) == [waiting.pk]

    # A second run counts nothing twice; the waiting send is counted once answered.
    assert rollup()["sends"] == 0
    SendRecord.objects.filter(pk=waiting.pk).update(outcome="ok", error_code=0)
    assert rollup()["sends"] == 1
    assert _sum(metric=Metric.SEND, span=Span.TOTAL, outcome="ok") == 4
    assert not PendingSend.objects.exists()
    assert LastSend.objects.get(app_id=app.pk, outcome="ok").record_id == waiting.pk


def test_it_leaves_rows_younger_than_the_grace_period_for_the_next_run(
    manager, settings
):
    settings.OVERVIEW_ROLLUP_GRACE_SECONDS = 60
    make_send_record(user=manager, created_at=_ago(minutes=5))
    young = make_send_record(user=manager)
    assert rollup()["sends"] == 1
    settings.OVERVIEW_ROLLUP_GRACE_SECONDS = 0
    assert rollup()["sends"] == 1
    assert _sum(metric=Metric.SEND, span=Span.TOTAL) == 2
    assert young.pk


def test_it_sums_webhook_counts_senders_entries_and_latency():
    app = make_app()
    entry = BlocklistEntry.objects.create(
        blocklist=Blocklist.objects.create(name="words"), term="spam"
    )
    minute = floor_minute(_ago(minutes=2))
    DecisionCount.objects.create(app=app, minute=minute, action="allow", count=50)
    DecisionCount.objects.create(app=app, minute=minute, action="forbid", count=2)
    for sender in ("troll", "troll", "other"):
        Decision.objects.create(
            app=app,
            created_at=_ago(minutes=2),
            sender=sender,
            action="forbid",
            entry_ids=[entry.pk],
        )
    for bucket_us, n in ((3_000, 2), (40_000, 1), (2_500_000, 1)):
        LatencyCount.objects.create(
            app=app, minute=minute, bucket_us=bucket_us, count=n
        )

    rollup()
    assert _sum(metric=Metric.DECISION, span=Span.HOUR, outcome="allow") == 50
    assert _sum(metric=Metric.DECISION, span=Span.TOTAL, outcome="forbid") == 2
    assert _sum(metric=Metric.SENDER, span=Span.DAY, key="troll") == 2
    assert _sum(metric=Metric.ENTRY, span=Span.MINUTE, code=entry.pk) == 3
    assert _sum(metric=Metric.LATENCY, span=Span.TOTAL, code=3_000) == 2
    assert _sum(metric=Metric.LATENCY, span=Span.HOUR, code=2_500_000) == 1
    # Counts flushed late for a recent minute are picked up by the next run.
    DecisionCount.objects.filter(action="allow").update(count=60)
    rollup()
    assert _sum(metric=Metric.DECISION, span=Span.DAY, outcome="allow") == 60


def test_it_shows_a_manager_their_sends_and_failures(manager):
    app = make_app(name="Main app")
    make_send_record(app=app, user=manager, created_at=_ago(minutes=10))
    make_send_record(
        app=app,
        user=manager,
        created_at=_ago(minutes=10),
        outcome="failed",
        error_code=10017,
    )
    response = client_for(manager).get("/?range=hour")
    assert response.status_code == 200
    html = response.content.decode()
    chart = response.context["manager"]["chart"]
    assert {s.label: sum(s.values) for s in chart.series} == {"ok": 1, "failed": 1}
    assert len(chart.buckets) == 60
    failures = response.context["manager"]["failures"]
    assert [(f["code"], f["n"]) for f in failures] == [(10017, 1)]
    assert failures[0]["explanation"]
    assert failures[0]["explanation"] in html
    assert "<svg" in html and "Show as a table" in html


def test_it_shows_each_role_only_its_own_figures(users):
    for name, user in users.items():
        context = client_for(user).get("/").context
        shown = {
            k
            for k in ("manager", "moderator", "auditor", "administrator")
            if k in context
        }
        expected = {
            "manager": {"manager"},
            "moderator": {"moderator"},
            "auditor": {"auditor"},
            "admin": {"administrator"},
            "outsider": set(),
        }[name]
        assert shown == expected, name


def test_it_shows_the_moderator_latency_against_the_budget(moderator):
    app = make_app()
    minute = floor_minute(_ago(minutes=3))
    for bucket_us, n in ((5_000, 98), (700_000, 1), (2_200_000, 1)):
        LatencyCount.objects.create(
            app=app, minute=minute, bucket_us=bucket_us, count=n
        )
    response = client_for(moderator).get("/?range=hour")
    summary = response.context["moderator"]["latency"]
    assert (
        summary["total"],
        summary["p50"],
        summary["p99"],
        summary["over_budget"],
    ) == (100, 5.0, 700.0, 1)
    assert summary["within_budget"] is True
    assert "≤ 700.0 ms" in response.content.decode()


def test_it_shows_the_auditor_volume_and_failure_rate(auditor, manager):
    for outcome in ("ok", "ok", "ok", "failed"):
        make_send_record(user=manager, outcome=outcome, created_at=_ago(hours=2))
    context = client_for(auditor).get("/?range=day").context
    assert context["auditor"]["total"] == 4
    assert context["auditor"]["failure_rate"] == 25.0
    assert len(context["auditor"]["chart"].buckets) == 24


def test_it_shows_administrators_each_apps_last_success_and_failure(
    admin_user, manager
):
    app = make_app(name="Checked app")
    ok = make_send_record(app=app, user=manager, created_at=_ago(minutes=9))
    bad = make_send_record(
        app=app, user=manager, outcome="failed", created_at=_ago(minutes=8)
    )
    rows = client_for(admin_user).get("/").context["administrator"]["apps"]
    row = next(r for r in rows if r["app"] == app)
    assert (row["last_ok"].record_id, row["last_failure"].record_id) == (ok.pk, bad.pk)


def test_it_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_adds_to_the_same_rows_whatever_wrote_them_first():
    from collections import Counter

    from liveadmin.rollup import add_counts

    minute = floor_minute(_ago(minutes=3))
    Tally.objects.create(metric=Metric.SEND, span=Span.MINUTE, start=minute, count=1)
    key = (Metric.SEND.value, "m", minute, 0, 0, "", "", 0, "")
    add_counts(Counter({key: 4}))
    add_counts(Counter({key: 1}))
    assert Tally.objects.get(metric=Metric.SEND, span=Span.MINUTE).count == 6


def test_it_shows_the_last_credential_check_apart_from_sends(admin_user):
    app = make_app(name="Checked")
    ok = make_send_record(app=app, user=admin_user, created_at=_ago(minutes=9))
    check = make_send_record(
        app=app,
        user=admin_user,
        kind="check",
        outcome="failed",
        error_code=70009,
        created_at=_ago(minutes=8),
    )
    response = client_for(admin_user).get("/")
    row = next(r for r in response.context["administrator"]["apps"] if r["app"] == app)
    assert row["last_ok"].record_id == ok.pk and row["last_failure"] is None
    assert row["check"] == check
    assert "not accepted" in response.content.decode()


def test_it_keeps_sliding_windows_for_the_top_lists():
    from django.db import transaction

    from liveadmin.rollup import expire_windows

    app = make_app()
    for hours, sender in ((30, "old"), (2, "recent"), (2, "recent")):
        Decision.objects.create(
            app=app, created_at=_ago(hours=hours), sender=sender, action="forbid"
        )
    rollup()
    assert _sum(metric=Metric.SENDER, span=Span.LAST_DAY, key="recent") == 2
    assert _sum(metric=Metric.SENDER, span=Span.LAST_DAY, key="old") == 0
    assert _sum(metric=Metric.SENDER, span=Span.LAST_WEEK, key="old") == 1
    # 23 hours on, the recent hour has left the last 24 hours but not the week.
    with transaction.atomic():
        expire_windows(timezone.now() + timedelta(hours=23))
    assert _sum(metric=Metric.SENDER, span=Span.LAST_DAY) == 0
    assert _sum(metric=Metric.SENDER, span=Span.LAST_WEEK) == 3
    with transaction.atomic():
        expire_windows(timezone.now() + timedelta(days=7))
    assert _sum(metric=Metric.SENDER, span=Span.LAST_WEEK) == 0


def test_it_shows_the_moderator_top_senders_and_entries(moderator):
    app = make_app(name="Top app")
    entry = BlocklistEntry.objects.create(
        blocklist=Blocklist.objects.create(name="bad words"), term="badword"
    )
    for sender, n in (("spammer", 3), ("once", 1)):
        for _ in range(n):
            Decision.objects.create(
                app=app,
                created_at=_ago(minutes=30),
                sender=sender,
                action="forbid",
                entry_ids=[entry.pk],
            )
    for rng in ("hour", "day", "week"):
        context = client_for(moderator).get(f"/?range={rng}").context["moderator"]
        assert [(s["key"], s["n"]) for s in context["senders"]] == [
            ("spammer", 3),
            ("once", 1),
        ], rng
        assert [(e["entry"], e["n"]) for e in context["entries"]] == [(entry, 4)], rng


def test_it_leaves_counting_to_the_periodic_task_when_asked(manager, settings):
    settings.OVERVIEW_ROLLUP_ON_VIEW = False
    make_send_record(user=manager, created_at=_ago(minutes=5))
    chart = client_for(manager).get("/?range=hour").context["manager"]["chart"]
    assert chart.total == 0
    from liveadmin.tasks import rollup_counts

    assert rollup_counts()["sends"] == 1
    chart = client_for(manager).get("/?range=hour").context["manager"]["chart"]
    assert chart.total == 1
