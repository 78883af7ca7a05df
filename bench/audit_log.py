"""Benchmark: the audit log with one million entries on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_audit \\
        .venv/bin/python bench/audit_log.py [--rows 1000000] [--repeat 5]

Creates and migrates the database if needed, fills it once with a realistic log
(~10 apps of uneven traffic, 50 users, 20,000 rooms, 90 days, ~90% ok, ~3%
dropped, ~7% failed with provider error codes), then times the audit list page
through Django's test Client (signed in as an auditor) with each common filter,
and the CSV export (first row, first chunk, a full filtered export against the
model-instance path as the baseline, the whole log, peak Python memory), then the
hash chain: verification speed against reading the same rows, and the chain's cost
to the send path (writing and answering a row with and without the chain). Prints one table, and the index each page query uses (EXPLAIN).
The data is reused by later runs. Refuses to run on SQLite, and on a database
whose name does not start with "bench" (it inserts a million rows).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

APPS = 10
USERS = 50
ROOMS = 20_000
DAYS = 90
CHUNK = 100_000
# Provider failure codes, most frequent first (Tencent group / ZEGO codes).
ERROR_CODES = [10017, 10016, 80001, 20004, 10007, 10010, 10015, 10002, 90001, 80002]


def configure() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit(
            "DATABASE_URL is required, e.g. postgres://postgres@127.0.0.1:5432/bench_audit"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit(f"this benchmark needs PostgreSQL, not {parts.scheme or url!r}")
    name = parts.path.lstrip("/")
    if not name.startswith("bench") and "--force" not in sys.argv:
        sys.exit(
            f"refusing to fill database {name!r} with a million rows: use a dedicated "
            "database whose name starts with 'bench' (or pass --force)"
        )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveadmin.settings")
    os.environ.setdefault(
        "SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnop"
    )
    os.environ.setdefault(
        "LIVEADMIN_ENCRYPTION_KEY", "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0wMTIzNDU="
    )
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    # No scheduler thread linking or verifying the chain while it is timed.
    os.environ.setdefault("EMBEDDED_SCHEDULER", "0")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    return name


def create_database(name: str) -> None:
    import psycopg
    from psycopg import sql

    url = urlsplit(os.environ["DATABASE_URL"])
    admin_url = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


FILL_SQL = """
WITH base AS (
    SELECT g,
        random() AS r, random() AS r_app, random() AS r_kind, random() AS r_code,
        random() AS r_att,
        now() - random() * make_interval(days => %(days)s) AS ts,
        floor(random() * 4294967295)::bigint AS rnd,
        floor(power(random(), 1.5) * %(n_users)s)::int AS u_ix,
        floor(random() * %(rooms)s)::int AS room_n,
        floor(random() * 5000)::int AS sender_n,
        20 + floor(random() * 280)::int AS latency
    FROM generate_series(%(start)s, %(stop)s) AS g
), drawn AS (
    SELECT *,
        1 + floor(power(r_app, 2) * %(n_apps)s)::int AS a_ix,
        CASE WHEN r < 0.90 THEN 'ok' WHEN r < 0.93 THEN 'dropped'
             WHEN r < 0.999 THEN 'failed' ELSE 'waiting' END AS outcome
    FROM base
), shaped AS (
    SELECT g, ts, rnd, latency, outcome,
        (%(users)s::bigint[])[1 + u_ix] AS user_id,
        (%(apps)s::bigint[])[a_ix] AS app_id,
        CASE WHEN (%(providers)s::text[])[a_ix] = 'zego' THEN 'command'
             WHEN r_kind < 0.70 THEN 'text'
             WHEN r_kind < 0.98 THEN 'custom' ELSE 'broadcast' END AS kind,
        'room-' || room_n AS room,
        'anchor_' || sender_n AS sender,
        CASE WHEN r_att < 0.05 THEN 2 ELSE 1 END AS attempts,
        CASE outcome WHEN 'failed'
                THEN (%(codes)s::bigint[])[1 + floor(power(r_code, 2) * 10)::int]
             WHEN 'waiting' THEN NULL ELSE 0 END AS code,
        CASE WHEN outcome = 'waiting' THEN '' ELSE md5(g::text || 'rid') END AS request_id,
        CASE WHEN outcome = 'ok' THEN 1 + (g / %(rooms)s) END AS seq,
        CASE WHEN outcome = 'ok' THEN extract(epoch FROM ts)::bigint END AS msg_time
    FROM drawn
)
INSERT INTO messaging_sendrecord (
    created_at, updated_at, user_id, app_id, kind, room_id, sender, random, outcome,
    action_status, error_code, error_info, request_id, msg_seq, msg_time, drop_reason,
    http_status, latency_ms, attempts, retryable, request_body, response_body)
SELECT ts, ts + make_interval(secs => latency / 1000.0), user_id, app_id, kind,
    CASE WHEN kind = 'broadcast' THEN '' ELSE room END,
    sender, rnd, outcome,
    CASE outcome WHEN 'waiting' THEN '' WHEN 'failed' THEN 'FAIL' ELSE 'OK' END,
    code,
    CASE WHEN outcome = 'failed' THEN 'provider error ' || code ELSE '' END,
    request_id, seq, msg_time,
    CASE WHEN outcome = 'dropped' THEN 'MsgDropped_CallbackDiscard' ELSE '' END,
    CASE WHEN outcome = 'waiting' THEN NULL ELSE 200 END,
    CASE WHEN outcome = 'waiting' THEN NULL ELSE latency END,
    attempts, false,
    jsonb_build_object('GroupId', room, 'From_Account', sender, 'Random', rnd,
        'MsgBody', jsonb_build_array(jsonb_build_object('MsgType', 'TIMTextElem',
            'MsgContent', jsonb_build_object('Text', 'Welcome to the show, #' || g)))),
    CASE WHEN outcome = 'waiting' THEN NULL ELSE jsonb_build_object(
        'ActionStatus', CASE WHEN outcome = 'failed' THEN 'FAIL' ELSE 'OK' END,
        'ErrorCode', code, 'ErrorInfo', '', 'RequestId', request_id,
        'MsgSeq', seq, 'MsgTime', msg_time) END
FROM shaped
"""


def fill(rows: int) -> None:
    from django.contrib.auth.models import Group, User
    from django.db import connection

    from liveadmin.roles import Role
    from messaging.models import ProviderApp, SendRecord

    have = SendRecord.objects.count()
    if have >= rows:
        print(f"reusing {have:,} send log entries")
        return
    if have:
        print(f"found {have:,} entries (an interrupted fill): starting again")
        with connection.cursor() as cursor:
            # TRUNCATE is the owner's (see README "Least privilege"); DELETE is refused.
            cursor.execute("TRUNCATE messaging_sendrecord CASCADE")
            # The chain starts again too: forget what was verified of the old one.
            cursor.execute("TRUNCATE messaging_auditverification")

    managers = Group.objects.get(name=Role.MANAGER.value)
    users = []
    for i in range(USERS):
        user, _ = User.objects.get_or_create(username=f"bench-user-{i:02d}")
        user.groups.add(managers)
        users.append(user.pk)
    apps, providers = [], []
    for i in range(APPS):
        provider = "zego" if i >= APPS - 2 else "tencent"
        app, _ = ProviderApp.objects.get_or_create(
            name=f"bench-app-{i}",
            defaults={
                "provider": provider,
                "app_id": 1_400_100_000 + i,
                "region": "singapore" if provider == "tencent" else "sgp",
                "identifier": "administrator",
                "secret_key": f"bench-secret-{i}",
            },
        )
        apps.append(app.pk)
        providers.append(app.provider)

    # Building the indexes once after the load is much faster than keeping ten
    # of them up to date row by row.
    indexes = SendRecord._meta.indexes
    with connection.schema_editor() as editor:
        for index in indexes:
            editor.remove_index(SendRecord, index)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for start in range(1, rows + 1, CHUNK):
            stop = min(start + CHUNK - 1, rows)
            cursor.execute(
                FILL_SQL,
                {
                    "start": start,
                    "stop": stop,
                    "rooms": ROOMS,
                    "days": DAYS,
                    "users": users,
                    "n_users": USERS,
                    "apps": apps,
                    "providers": providers,
                    "n_apps": APPS,
                    "codes": ERROR_CODES,
                },
            )
            print(f"  inserted {stop:,} rows ({time.perf_counter() - started:.0f} s)")
        cursor.execute("SET maintenance_work_mem = '512MB'")
    with connection.schema_editor() as editor:
        for index in indexes:
            editor.add_index(SendRecord, index)
    with connection.cursor() as cursor:
        # A real log is written in time order, so its rows lie in the order of the
        # (created_at, id) index that exports read; the fill drew times at random.
        cursor.execute("CLUSTER messaging_sendrecord USING send_created_id")
        cursor.execute("VACUUM ANALYZE messaging_sendrecord")
    print(f"filled {rows:,} entries in {time.perf_counter() - started:.0f} s")


def indexes_used(queryset) -> str:
    plan = queryset.explain()
    names = re.findall(
        r"(?:Index|Index Only|Bitmap Index) Scan(?: Backward)? on (\w+)", plan
    )
    names += re.findall(r"Scan(?: Backward)? using (\w+)", plan)
    if "Seq Scan" in plan:
        names.append("SEQ SCAN")
    return ", ".join(dict.fromkeys(names)) or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--force", action="store_true")
    parser.add_argument(
        "--sends",
        type=int,
        default=2000,
        help="sends per round of the send-path figure",
    )
    parser.add_argument(
        "--chain-only", action="store_true", help="only the hash chain figures"
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="put a reused log in time order first (fills since this option do it)",
    )
    args = parser.parse_args()

    name = configure()
    create_database(name)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.http import StreamingHttpResponse
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import reverse
    from django.utils import timezone

    from liveadmin.csv_export import csv_stream
    from liveadmin.roles import Role
    from messaging.models import ProviderApp, SendRecord
    from messaging.services.audit import (
        EXPORT_HEADER,
        Cursor,
        ExportCount,
        LogFilter,
        csv_lines,
        export_rows,
        filter_send_log,
        iterate_send_log,
        older_than,
        page_send_log,
    )

    call_command("migrate", verbosity=0)
    fill(args.rows)
    if args.cluster:
        with connection.cursor() as cursor:
            cursor.execute("CLUSTER messaging_sendrecord USING send_created_id")
            cursor.execute("VACUUM ANALYZE messaging_sendrecord")
    if args.chain_only:
        bench_chain(args.sends)
        return
    # Production settings (DEBUG off) but no collectstatic: plain static storage.
    override_settings(
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {
                "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
            },
        }
    ).enable()

    from django.contrib.auth.models import Group, User

    auditor, _ = User.objects.get_or_create(username="bench-auditor")
    auditor.groups.add(Group.objects.get(name=Role.AUDITOR.value))
    client = Client()
    client.force_login(auditor)

    # Filter values that exist in the data, picked without timing.
    app = ProviderApp.objects.get(name="bench-app-3")
    zego = ProviderApp.objects.get(name="bench-app-9")
    # An OK send from the middle of the log: its room, sender, RequestId, MsgSeq.
    sample = (
        SendRecord.objects.filter(outcome="ok", id__gte=SendRecord.objects.count() // 2)
        .order_by("id")
        .first()
    )
    assert sample is not None, "the bench log has no OK send"
    user = User.objects.get(username="bench-user-07")
    day = timezone.now() - timedelta(days=30)
    total = SendRecord.objects.count()
    deep_at = total // 2
    deep = SendRecord.objects.order_by("-created_at", "-id")[deep_at]
    deep_cursor = Cursor.of(deep)
    fmt = "%Y-%m-%dT%H:%M"
    cases: list[tuple[str, dict, LogFilter]] = [
        ("no filter (first page)", {}, LogFilter()),
        (f"app = {app.name}", {"app": app.pk}, LogFilter(app=app)),
        ("outcome = failed", {"outcome": "failed"}, LogFilter(outcome="failed")),
        ("error code = 10015", {"error_code": 10015}, LogFilter(error_code=10015)),
        ("room", {"room": sample.room_id}, LogFilter(room=sample.room_id)),
        ("sender", {"sender": sample.sender}, LogFilter(sender=sample.sender)),
        ("user", {"user": user.username}, LogFilter(user_id=user.pk)),
        (
            "RequestId",
            {"request_id": sample.request_id},
            LogFilter(request_id=sample.request_id),
        ),
        ("MsgSeq", {"msg_seq": sample.msg_seq}, LogFilter(msg_seq=sample.msg_seq)),
        (
            "room + MsgSeq",
            {"room": sample.room_id, "msg_seq": sample.msg_seq},
            LogFilter(room=sample.room_id, msg_seq=sample.msg_seq),
        ),
        ("kind = broadcast", {"kind": "broadcast"}, LogFilter(kind="broadcast")),
        (
            "time range (1 day, 30 days ago)",
            {
                "since": day.strftime(fmt),
                "until": (day + timedelta(days=1)).strftime(fmt),
                "tz": "UTC",
            },
            LogFilter(
                since=day.replace(second=0, microsecond=0),
                until=day + timedelta(days=1),
            ),
        ),
        (
            "app + outcome = failed",
            {"app": app.pk, "outcome": "failed"},
            LogFilter(app=app, outcome="failed"),
        ),
        (
            "no match: ZEGO app + broadcast",
            {"app": zego.pk, "kind": "broadcast"},
            LogFilter(app=zego, kind="broadcast"),
        ),
        (
            "deep page (row 500,000, cursor)",
            {"after": deep_cursor.encode()},
            LogFilter(),
        ),
    ]

    url = reverse("messaging:audit")
    total = SendRecord.objects.count()
    print(
        f"\n{total:,} entries; list page = {url}, {args.repeat} runs each after one warm-up;\n"
        "page ms = the whole request through the test Client (median, min); "
        "query ms = the page query alone (median)\n"
    )
    print(
        f"{'filter':36} {'page ms':>8} {'min':>6} {'query ms':>9} {'rows':>5}  index used"
    )
    print("-" * 100)
    for label, params, log_filter in cases:
        timings = []
        rows = 0
        for run in range(args.repeat + 1):
            started = time.perf_counter()
            response = client.get(url, params)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (label, response.status_code)
            if run:
                timings.append(elapsed)
            rows = response.content.count(b'<tr id="send-')
        queryset = filter_send_log(SendRecord.objects.all(), log_filter)
        after = deep_cursor if "after" in params else None
        query_timings = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            page_send_log(queryset, after=after)
            query_timings.append((time.perf_counter() - started) * 1000)
        if after is not None:
            queryset = older_than(queryset, after)
        used = indexes_used(queryset.order_by("-created_at", "-id")[:51])
        print(
            f"{label:36} {statistics.median(timings):8.1f} {min(timings):6.1f} "
            f"{statistics.median(query_timings):9.1f} {rows:5}  {used}"
        )

    print("\nCSV export (StreamingHttpResponse through the test Client)")
    print("-" * 100)
    export = reverse("messaging:audit-export")
    for label, params in [
        ("whole log", {}),
        ("outcome = failed", {"outcome": "failed"}),
    ]:
        started = time.perf_counter()
        response = client.get(export, params)
        assert isinstance(response, StreamingHttpResponse)
        stream = iter(response.streaming_content)
        next(stream)  # the header line
        next(stream)  # the first row: the first keyset chunk is read
        first_row = (time.perf_counter() - started) * 1000
        for _ in zip(range(1999), stream, strict=False):
            pass
        first_chunk = (time.perf_counter() - started) * 1000
        print(
            f"{label:36} first row {first_row:7.1f} ms   first 2,000 rows {first_chunk:7.1f} ms"
        )
        response.close()

    # The export path before issue 11 (model instances, one formatted row each) is
    # this run's baseline, against the Python tuple path (SQLite) and the CSV that
    # PostgreSQL writes itself (COPY), which the download and `auditlog export` use.
    failed = filter_send_log(SendRecord.objects.all(), LogFilter(outcome="failed"))

    def model_rows(records):
        for r in records:
            yield [
                r.pk,
                r.created_at.isoformat(),
                r.user.get_username(),
                r.app.name,
                r.kind,
                r.room_id,
                r.sender,
                r.outcome,
                r.action_status,
                r.error_code,
                r.error_info,
                r.request_id,
                r.msg_seq,
                r.msg_time,
                r.drop_reason,
                r.http_status,
                r.latency_ms,
                r.attempts,
                r.random,
                r.request_body,
                r.response_body,
            ]

    def timed_export(lines, count=None) -> tuple[int, int, float]:
        started = time.perf_counter()
        size = 0
        n = -1
        for chunk in lines:
            size += len(chunk)
            n += 1
        return (
            (count.rows if count is not None else n),
            size,
            time.perf_counter() - started,
        )

    figures = {}
    for label, make in [
        (
            "model instances (before)",
            lambda: (
                csv_stream(EXPORT_HEADER[:21], model_rows(iterate_send_log(failed))),
                None,
            ),
        ),
        (
            "Python tuples (SQLite path)",
            lambda: (
                csv_stream(EXPORT_HEADER, export_rows(failed, json_as_text=True)),
                None,
            ),
        ),
        (
            "PostgreSQL COPY (now)",
            lambda: (lambda c: (csv_lines(failed, c), c))(ExportCount()),
        ),
    ]:
        lines, count = make()
        rows, size, elapsed = timed_export(lines, count)
        figures[label] = rows / elapsed
        print(
            f"{'export, outcome = failed, ' + label:56} {rows:,} rows, {size / 1e6:.1f} MB "
            f"in {elapsed:.1f} s ({rows / elapsed:,.0f} rows/s)"
        )
    base = figures["model instances (before)"]
    print(
        f"{'  ratios to the model-instance path':56} tuples "
        f"{figures['Python tuples (SQLite path)'] / base:.1f}x, COPY "
        f"{figures['PostgreSQL COPY (now)'] / base:.1f}x"
    )
    count = ExportCount()
    rows, size, elapsed = timed_export(
        csv_lines(SendRecord.objects.all(), count), count
    )
    print(
        f"{'export, whole log (goal >= 30,000 rows/s)':56} {rows:,} rows, "
        f"{size / 1e6:.0f} MB in {elapsed:.1f} s ({rows / elapsed:,.0f} rows/s)"
    )

    # Constant memory: the peak is the same for fourteen times as many rows.
    for label, queryset in [
        ("outcome = failed", failed),
        ("whole log", SendRecord.objects.all()),
    ]:
        count = ExportCount()
        tracemalloc.start()
        for _ in csv_lines(queryset, count):
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{'peak Python memory, ' + label:56} {peak / 1e6:.1f} MB for {count.rows:,} rows"
        )

    bench_chain(args.sends)


def bench_chain(sends: int) -> None:
    """Verification speed, and what the chain costs the send path."""
    from django.contrib.auth.models import User
    from django.db import connection

    from messaging.models import AuditLink, ProviderApp, SendRecord
    from messaging.services import audit_chain

    print("\nHash chain")
    print("-" * 100)
    started = time.perf_counter()
    linked = audit_chain.link_final_sends()
    if linked:
        elapsed = time.perf_counter() - started
        print(
            f"{'linked the queued final sends':52} {linked:,} in {elapsed:.1f} s "
            f"({linked / elapsed:,.0f} /s)"
        )
    # Baseline: reading the chain's rows without hashing them.
    started = time.perf_counter()
    read = sum(1 for _ in audit_chain._chain_rows(audit_chain.VERIFY_CHUNK))
    read_rate = read / (time.perf_counter() - started)
    result = audit_chain.verify_chain(link_first=False)
    rate = result.rows / result.seconds
    print(
        f"{'read the chain rows only (baseline)':52} {read:,} rows ({read_rate:,.0f} rows/s)"
    )
    print(
        f"{'verify (goal >= 50,000 rows/s)':52} {result.rows:,} links in "
        f"{result.seconds:.1f} s ({rate:,.0f} rows/s, {rate / read_rate:.2f}x the read); "
        f"ok={result.ok} to #{result.verified_to}"
    )
    if not result.ok:
        print(f"  {result.problem}")

    # The send path's database work, as messaging/services/sending.py does it: write
    # the waiting row, then the answer (each its own transaction). Without the chain =
    # the trigger that queues a row becoming final is disabled (this benchmark runs
    # as the owner; the answer-once guard stays on); with it = the trigger queues
    # each row, plus the linker's time for those rows.
    user = User.objects.get(username="bench-user-07")
    app = ProviderApp.objects.get(name="bench-app-3")

    def send_many(tag: str) -> tuple[float, list[int]]:
        ids = []
        started = time.perf_counter()
        for i in range(sends):
            record = SendRecord.objects.create(
                user=user,
                app=app,
                kind="text",
                room_id=f"bench-room-{i % 50}",
                sender="host",
                random=i,
                request_body={"GroupId": f"bench-room-{i % 50}", "Random": i},
            )
            SendRecord.objects.filter(pk=record.pk, outcome="waiting").update(
                outcome="ok",
                action_status="OK",
                error_code=0,
                request_id=f"{tag}-{i}",
                http_status=200,
                latency_ms=20,
                attempts=1,
                response_body={"ActionStatus": "OK", "ErrorCode": 0},
            )
            ids.append(record.pk)
        return time.perf_counter() - started, ids

    without, with_chain = [], []
    for round_ in range(3):
        queue_trigger = "messaging_sendrecord {} TRIGGER sendrecord_becomes_final"
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE " + queue_trigger.format("DISABLE"))
        elapsed, ids = send_many(f"plain{round_}")
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE " + queue_trigger.format("ENABLE"))
            # Queue them as the trigger would have, so the chain stays whole.
            cursor.execute(
                "INSERT INTO messaging_auditpending (record_id) SELECT unnest(%s::bigint[])",
                [ids],
            )
        audit_chain.link_final_sends()
        without.append(elapsed)
        elapsed, ids = send_many(f"chain{round_}")
        started = time.perf_counter()
        audit_chain.link_final_sends()
        assert AuditLink.objects.filter(record_id__in=ids).count() == len(ids)
        with_chain.append(elapsed + time.perf_counter() - started)
    base, chained = statistics.median(without), statistics.median(with_chain)
    print(
        f"{'send path, database work, without the chain':52} {base / sends * 1000:.3f} ms/send "
        f"(median of 3 x {sends:,})"
    )
    print(
        f"{'send path + queueing + linking (the chain)':52} {chained / sends * 1000:.3f} ms/send "
        f"(+{(chained / base - 1) * 100:.1f}%, goal <= 10%)"
    )


if __name__ == "__main__":
    main()
