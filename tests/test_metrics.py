from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from liveadmin import limiter_wait
from liveadmin.rollup import floor_minute
from tests.factories import make_app, make_batch, make_send_record
from webhooks.models import DecisionCount, LatencyCount

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def count_on_view(settings):
    """The page counts what is new itself (no Celery beat in these tests)."""
    settings.OVERVIEW_ROLLUP_ON_VIEW = True


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_it_is_off_unless_a_token_or_addresses_are_set(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []
    assert Client().get("/metrics").status_code == 404


def test_it_refuses_a_missing_or_wrong_token(settings):
    settings.METRICS_TOKEN = "s3cret-token"
    settings.METRICS_ALLOWED_IPS = []
    assert Client().get("/metrics").status_code == 401
    response = Client().get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert "s3cret" not in response.content.decode()


def test_it_lets_in_an_allowed_address(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "127.0.0.1"]
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="192.168.1.1").get("/metrics").status_code == 401


def test_it_reports_sends_decisions_latency_waiting_rows_and_limiter_waits(
    settings, manager
):
    settings.METRICS_TOKEN = "s3cret-token"
    app = make_app(name="metrics-app")
    earlier = timezone.now() - timedelta(minutes=2)
    make_send_record(app=app, user=manager, created_at=earlier)
    make_send_record(app=app, user=manager, created_at=earlier)
    make_send_record(app=app, user=manager, created_at=earlier, outcome="failed")
    make_batch(app, rooms=["r1", "r2", "r3"])
    DecisionCount.objects.create(
        app=app, minute=floor_minute(earlier), action="allow", count=7
    )
    DecisionCount.objects.create(
        app=app, minute=floor_minute(earlier), action="forbid", count=2
    )
    for bucket_us, n in ((3_000, 1), (40_000, 2), (2_500_000, 1)):
        LatencyCount.objects.create(
            app=app, minute=floor_minute(earlier), bucket_us=bucket_us, count=n
        )
    # The limiter counts what its reservations wait: 4 sends at 2/s wait 0 (or a
    # little), 0.5, 1.0 and 1.5 s more, about 3 s in all.
    from messaging import ratelimit

    slow = make_app(name="slow-app", rate_limit=2)
    seconds_before, waits_before = limiter_wait.totals()
    start, interval, count = ratelimit.reserve(slow, "text", 4)
    assert count == 4
    limiter_wait.flush()
    seconds_after, waits_after = limiter_wait.totals()
    assert seconds_after - seconds_before == pytest.approx(6 * interval, abs=0.1)
    assert waits_after - waits_before >= 3

    response = Client().get(
        "/metrics", headers={"Authorization": "Bearer s3cret-token"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    samples = _samples(text)
    sent = {"app": "metrics-app", "kind": "text"}
    assert (
        samples[
            ("liveadmin_sends_total", tuple(sorted({**sent, "outcome": "ok"}.items())))
        ]
        == 2
    )
    assert (
        samples[
            (
                "liveadmin_sends_total",
                tuple(sorted({**sent, "outcome": "failed"}.items())),
            )
        ]
        == 1
    )
    assert (
        samples[
            (
                "liveadmin_webhook_decisions_total",
                (("action", "allow"), ("app", "metrics-app")),
            )
        ]
        == 7
    )
    assert (
        samples[
            (
                "liveadmin_webhook_decisions_total",
                (("action", "forbid"), ("app", "metrics-app")),
            )
        ]
        == 2
    )
    assert (
        samples[("liveadmin_webhook_latency_seconds_bucket", (("le", "0.005"),))] == 1
    )
    assert samples[("liveadmin_webhook_latency_seconds_bucket", (("le", "0.05"),))] == 3
    assert samples[("liveadmin_webhook_latency_seconds_bucket", (("le", "2.0"),))] == 3
    assert samples[("liveadmin_webhook_latency_seconds_bucket", (("le", "+Inf"),))] == 4
    assert samples[("liveadmin_batch_rows_waiting", ())] == 3
    assert samples[("liveadmin_ratelimit_wait_seconds_total", ())] >= 3.0
    assert samples[("liveadmin_ratelimit_waits_total", ())] >= 3
    names = {family.name for family in text_string_to_metric_families(text)}
    assert all(name.startswith("liveadmin_") for name in names)
