"""Benchmark: the overview pages with 1,000,000 sends and 1,000,000 decisions on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_overview \\
        .venv/bin/python bench/overview.py [--rows 1000000] [--repeat 15]

Fills a dedicated database once (its name must start with "bench"): the send log of
bench/audit_log.py squeezed into the last 7 days, one million webhook decisions over
the same week with the webhook's per-minute counts, and a week of latency buckets.
Then catches the rollup up (printing how long that takes), and times the home page
of each role for each range through Django's test Client. The baseline, measured in
the same run, is what counting the log would cost: the same figures (sends by
outcome per hour for a day, and decisions per sender for a day) as GROUP BY queries
over the two logs. Prints milliseconds (median and max) and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import audit_log  # noqa: E402

DECISION_CHUNK = 250_000
SENDERS = 20_000
ENTRIES = 500

DECISION_SQL = """
INSERT INTO webhooks_decision (created_at, app_id, room_id, sender, action, error_code,
    entry_ids, text, original, response, review, reviewed_by, own_send)
SELECT ts, (%(apps)s::bigint[])[1 + floor(power(random(), 2) * %(n_apps)s)::int],
    'room-' || floor(random() * 20000)::int,
    'user_' || floor(power(random(), 3) * %(senders)s)::int,
    (ARRAY['forbid', 'forbid', 'mask', 'discard', 'forbid_code'])[1 + floor(random() * 5)::int],
    0,
    jsonb_build_array((%(entries)s::bigint[])[1 + floor(power(random(), 2) * %(n_entries)s)::int]),
    'some message text ' || g, '{}'::jsonb, '{}'::jsonb, '', '', false
FROM (SELECT g, now() - random() * interval '7 days' AS ts
      FROM generate_series(%(start)s, %(stop)s) AS g) AS s
"""

COUNTS_SQL = """
INSERT INTO webhooks_decisioncount (app_id, minute, action, count)
SELECT app_id, date_trunc('minute', created_at), action, count(*)
FROM webhooks_decision GROUP BY 1, 2, 3
UNION ALL
SELECT a, m, 'allow', 50 + floor(random() * 500)::int
FROM unnest(%(apps)s::bigint[]) AS a,
     generate_series(date_trunc('minute', now() - interval '7 days'),
                     date_trunc('minute', now()), interval '1 minute') AS m
"""

LATENCY_SQL = """
INSERT INTO webhooks_latencycount (app_id, minute, bucket_us, count)
SELECT a, m, b, floor(random() * 300)::int + 1
FROM unnest(%(apps)s::bigint[]) AS a,
     generate_series(date_trunc('minute', now() - interval '7 days'),
                     date_trunc('minute', now()), interval '1 minute') AS m,
     unnest(ARRAY[800, 1200, 2500, 5000, 12000, 40000]) AS b
"""


def fill_decisions(rows: int) -> None:
    from django.db import connection

    from messaging.models import ProviderApp
    from webhooks.models import Blocklist, BlocklistEntry, Decision

    have = Decision.objects.count()
    if have >= rows:
        print(f"reusing {have:,} decisions")
        return
    apps = list(
        ProviderApp.objects.filter(provider="tencent").values_list("pk", flat=True)
    )
    blocklist, _ = Blocklist.objects.get_or_create(name="bench-words")
    if BlocklistEntry.objects.filter(blocklist=blocklist).count() < ENTRIES:
        BlocklistEntry.objects.bulk_create(
            [
                BlocklistEntry(
                    blocklist=blocklist, term=f"word{i}", term_key=f"word{i}"
                )
                for i in range(ENTRIES)
            ],
            ignore_conflicts=True,
        )
    entries = list(
        BlocklistEntry.objects.filter(blocklist=blocklist).values_list("pk", flat=True)
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE webhooks_decision, webhooks_decisioncount, "
            "webhooks_latencycount, liveadmin_tally, "
            "liveadmin_rollupstate, liveadmin_pendingsend, liveadmin_lastsend"
        )
        for start in range(1, rows + 1, DECISION_CHUNK):
            stop = min(start + DECISION_CHUNK - 1, rows)
            cursor.execute(
                DECISION_SQL,
                {
                    "apps": apps,
                    "n_apps": len(apps),
                    "senders": SENDERS,
                    "entries": entries,
                    "n_entries": len(entries),
                    "start": start,
                    "stop": stop,
                },
            )
            print(
                f"  inserted {stop:,} decisions ({time.perf_counter() - started:.0f} s)"
            )
        cursor.execute(COUNTS_SQL, {"apps": apps})
        cursor.execute(LATENCY_SQL, {"apps": apps})
        cursor.execute("VACUUM ANALYZE webhooks_decision")
        cursor.execute("VACUUM ANALYZE webhooks_decisioncount")
    print(f"filled {rows:,} decisions in {time.perf_counter() - started:.0f} s")


def catch_up() -> None:
    from django.db import connection

    from liveadmin.models import RollupState
    from liveadmin.rollup import rollup

    if RollupState.objects.filter(name="sends", last_id__gt=0).exists():
        started = time.perf_counter()
        done = rollup()
        print(
            f"rollup already caught up; one more run: {done} in "
            f"{(time.perf_counter() - started) * 1000:.0f} ms"
        )
        return
    started = time.perf_counter()
    runs = 0
    while True:
        done = rollup(limit=100_000)
        runs += 1
        if not (done["sends"] or done["decisions"]):
            break
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE liveadmin_tally")
    from liveadmin.models import Tally

    print(
        f"rollup caught up with 2,000,000 log rows in {elapsed:.1f} s ({runs} runs); "
        f"{Tally.objects.count():,} count rows"
    )


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--force", action="store_true")
    parser.add_argument(
        "--recount", action="store_true", help="empty the counts and roll up again"
    )
    args = parser.parse_args()

    audit_log.DAYS = 7  # the whole log inside the widest range of the page
    # No scheduler thread in this process: it would run recovery on the bench data.
    os.environ["EMBEDDED_SCHEDULER"] = "0"
    # As in production, where Celery beat runs the rollup: pages only read the
    # counts. What a page would add in the embedded default is printed apart.
    os.environ.setdefault("OVERVIEW_ROLLUP_ON_VIEW", "0")
    name = audit_log.configure()
    audit_log.create_database(name)
    import django

    django.setup()
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.db.models.functions import TruncHour
    from django.test import Client
    from django.test.utils import override_settings
    from django.utils import timezone

    from liveadmin.roles import Role
    from messaging.models import SendRecord
    from webhooks.models import Decision

    call_command("migrate", verbosity=0)
    audit_log.fill(args.rows)
    fill_decisions(args.rows)
    if args.recount:
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE liveadmin_tally, liveadmin_rollupstate, "
                "liveadmin_pendingsend, liveadmin_lastsend"
            )
    catch_up()
    override_settings(
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {
                "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
            },
        }
    ).enable()

    def count_the_log() -> None:
        since = timezone.now() - timedelta(days=1)
        list(
            SendRecord.objects.filter(created_at__gte=since)
            .annotate(h=TruncHour("created_at"))
            .values("h", "outcome")
            .annotate(n=Count("id"))
            .order_by()
        )
        list(
            Decision.objects.filter(created_at__gte=since)
            .values("sender")
            .annotate(n=Count("id"))
            .order_by("-n")[:10]
        )

    baseline = timed(count_the_log, max(3, args.repeat // 3))
    base_ms = statistics.median(baseline)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load: {load}")
    print(
        f"database: {connection.vendor}, {SendRecord.objects.count():,} sends, "
        f"{Decision.objects.count():,} decisions"
    )
    print(f"baseline (counting the log for one day's figures): {base_ms:.1f} ms median")
    print(f"{'page':<32} {'median ms':>10} {'max ms':>8} {'x baseline':>11}")
    pages = []
    for role, username in (
        (Role.MANAGER, "bench-user-00"),
        (Role.MODERATOR, "bench-moderator"),
        (Role.AUDITOR, "bench-auditor"),
        (Role.ADMIN, "bench-admin"),
    ):
        user, _ = User.objects.get_or_create(username=username)
        user.groups.add(Group.objects.get(name=role.value))
        client = Client()
        client.force_login(user)
        if role is Role.ADMIN:  # administrators must pass the second factor
            from django_otp.plugins.otp_totp.models import TOTPDevice

            device, _ = TOTPDevice.objects.get_or_create(
                user=user, name="bench", defaults={"confirmed": True}
            )
            session = client.session
            session["otp_device_id"] = device.persistent_id
            session.save()
        for rng in ("hour", "day", "week"):

            def get(client=client, rng=rng) -> None:
                response = client.get(f"/?range={rng}")
                assert response.status_code == 200, response.status_code

            times = timed(get, args.repeat)
            med = statistics.median(times)
            pages.append(med)
            print(
                f"{role.value + ' / ' + rng:<32} {med:>10.1f} {max(times):>8.1f} "
                f"{med / base_ms:>10.3f}x"
            )
    print(f"slowest page median: {max(pages):.1f} ms (goal: under 100 ms)")
    from liveadmin.rollup import rollup

    on_view = timed(lambda: rollup(limit=2_000, on_demand=True), args.repeat)
    print(
        f"on-view rollup with nothing new (embedded default, no beat): "
        f"{statistics.median(on_view):.1f} ms median, {max(on_view):.1f} ms max"
    )


if __name__ == "__main__":
    main()
