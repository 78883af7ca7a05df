"""Load test of the before-send webhook against a bare JSON view, same server, same run.

    python bench/webhook_load.py [--duration 10] [--connections 16] [--store both]

Serves LiveAdmin with the production configuration (DEBUG off, gunicorn, 2 sync
workers) on a free 127.0.0.1 port, against a fresh database: PostgreSQL
(`<DATABASE_URL name>_bench`, recreated) when DATABASE_URL is set, else a SQLite
file in a temporary folder; REDIS_URL is passed through when set. The rules hold
10,000 words (half CJK), 1,000 wildcard patterns, 100 regular expressions and
10,000 blocked users. wrk POSTs a ~200-character before-send body (clean, so the
whole rule set is scanned) to the webhook, then the same body to a bare view that
only parses the JSON and answers JSON. Prints requests/s, the ratio and p50/p99
latency of each, plus the matcher alone in this process. With ``--store both`` the
webhook also runs with the recent-message store off (RECENT_MESSAGES_ENABLED=0),
and the ratio on/off is printed (moderation's goal: at most 10% lost).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
APP_ID = 1400777777
rng = random.Random(20261122)

LATIN = "abcdefghijklmnopqrstuvwxyz"


def cjk(n: int) -> str:
    return "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(n))


def latin(n: int) -> str:
    return "".join(rng.choice(LATIN) for _ in range(n))


def make_rules() -> list[tuple[str, str]]:
    """(kind, term) rows: 10,000 words, 1,000 wildcards, 100 regexes, 10,000 users."""
    rows: set[tuple[str, str]] = set()
    while len(rows) < 10_000:
        word = cjk(rng.randint(2, 4)) if len(rows) % 2 else latin(rng.randint(6, 10))
        rows.add(("word", word))
    while len(rows) < 11_000:
        rows.add(("wildcard", f"{latin(4)}*{latin(4)}"))
    n = 0
    while len(rows) < 11_100:
        rows.add(("regex", rf"\b{latin(3)}\d{{{2 + n % 3},6}}{latin(2)}\b"))
        n += 1
    while len(rows) < 21_100:
        rows.add(("user", f"user_{rng.randrange(10**9)}"))
    return sorted(rows)


MESSAGE = (
    "大家好，欢迎来到今晚的直播间！Welcome everyone to tonight's live stream, "
    "please be kind in the chat. 今天我们会抽奖，记得点赞关注。"
    "Questions about the new album go in the pinned thread, thanks a lot!!"
)


def before_send_body() -> dict:
    return {
        "CallbackCommand": "Group.CallbackBeforeSendMsg",
        "GroupId": "room-bench",
        "Type": "Live",
        "From_Account": "viewer-42",
        "Operator_Account": "viewer-42",
        "Random": 123456,
        "MsgId": "144115233406643804-1727580296-4026038328",
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": MESSAGE}}],
        "CloudCustomData": '{"level":3}',
        "EventTime": 1670574414123,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_database(tmp: Path) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return f"sqlite:///{tmp / 'bench.sqlite3'}"
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/") + "_bench"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name))


def load_data(env: dict[str, str]) -> dict:
    """Migrate and load the rules in this process (bulk insert: the services would
    write 21,100 change-history rows, which is not what is measured here)."""
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from messaging.models import ProviderApp
    from webhooks import matching, version
    from webhooks.models import Blocklist, BlocklistEntry

    call_command("migrate", "--no-input", verbosity=0)
    app = ProviderApp.objects.create(
        name="bench",
        provider="tencent",
        app_id=APP_ID,
        region="singapore",
        identifier="administrator",
        secret_key="bench-secret-0123456789",
    )
    blocklist = Blocklist.objects.create(name="Bench", app=None)
    rules = [
        (kind, term)
        for kind, term in make_rules()
        if kind != "regex" or matching.compile_regex_or_error(term) is None
    ]
    BlocklistEntry.objects.bulk_create(
        [
            BlocklistEntry(
                blocklist=blocklist,
                kind=k,
                term=t,
                term_key=BlocklistEntry.make_key(k, t),
            )
            for k, t in rules
        ],
        batch_size=2000,
    )
    version.bump()
    version.publish()
    counts: dict[str, int] = {}
    for kind, _ in rules:
        counts[kind] = counts.get(kind, 0) + 1

    # The matcher alone, in this process, on the same rules and message.
    compiled_rules = [
        matching.Rule(id=i, kind=k, term=t, action="forbid")
        for i, (k, t) in enumerate(rules, 1)
    ]
    started = time.perf_counter()
    ruleset = matching.RuleSet.compile(compiled_rules)
    compile_s = time.perf_counter() - started
    body = before_send_body()
    verdict = ruleset.check(
        from_account="viewer-42",
        msg_body=body["MsgBody"],
        cloud_custom_data=body["CloudCustomData"],
    )
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        ruleset.check(
            from_account="viewer-42",
            msg_body=body["MsgBody"],
            cloud_custom_data=body["CloudCustomData"],
        )
    check_us = (time.perf_counter() - started) / n * 1e6
    return {
        "app_pk": app.pk,
        "counts": counts,
        "compile_s": compile_s,
        "check_us": check_us,
        "verdict": verdict.action,
    }


def post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def wait_serving(url: str, body: bytes, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited")
        try:
            post(url, body)
            return
        except OSError:
            time.sleep(0.1)  # polling a starting server
    raise SystemExit("gunicorn did not start")


@contextmanager
def serve(wsgi_app: str, env: dict[str, str]) -> Iterator[str]:
    """gunicorn with 2 sync workers on a free 127.0.0.1 port; yields the base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            wsgi_app,
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_serving(f"{base}/webhooks/bench-bare", b"{}", proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def warm_up(url: str, body: bytes) -> None:
    """Both workers build their rules before the clock starts."""
    for _ in range(40):
        status, answer = post(url, body)
        assert status == 200 and json.loads(answer)["ErrorCode"] == 0, answer


def run_wrk(url: str, body: bytes, duration: int, connections: int, tmp: Path) -> dict:
    # wrk's Lua has no \u escapes: read the UTF-8 body from a file.
    body_file = tmp / "body.json"
    body_file.write_bytes(body)
    script = tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{body_file}", "rb")\n'
        'wrk.body = f:read("*a")\n'
        "f:close()\n"
    )
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(pct: str) -> float:
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--store",
        choices=["on", "off", "both"],
        default="on",
        help="the recent-message store (dry runs): on, off, or both compared",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian package wrk)")

    sys.path.insert(0, str(ROOT))
    db = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite"
    redis = "redis" if os.environ.get("REDIS_URL") else "no redis"
    tmp = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    env = {
        "DATABASE_URL": bench_database(tmp),
        "DJANGO_SETTINGS_MODULE": "bench.webhook_bench_settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "LIVEADMIN_ENCRYPTION_KEY": "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0wMTIzNDU=",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "60",
        # whitenoise warns that collectstatic has not run; static files are not measured.
        "PYTHONWARNINGS": "ignore::UserWarning",
    }
    env_all = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"} | env
    env_all["RECENT_MESSAGES_ENABLED"] = "0" if args.store == "off" else "1"
    print("loading rules ...", flush=True)
    loaded = load_data(env)

    query = (
        f"SdkAppid={APP_ID}&CallbackCommand=Group.CallbackBeforeSendMsg"
        "&contenttype=json&ClientIP=127.0.0.1&OptPlatform=RESTAPI"
    )
    body = json.dumps(before_send_body(), ensure_ascii=False).encode()
    results: dict[str, dict] = {}
    try:
        # Django (the production entry point): the webhook view and the bare view.
        with serve("liveadmin.wsgi:application", env_all) as base:
            webhook = f"{base}/webhooks/tencent?{query}"
            bare = f"{base}/webhooks/bench-bare?{query}"
            warm_up(webhook, body)
            results["webhook"] = run_wrk(
                webhook, body, args.duration, args.connections, tmp
            )
            results["bare"] = run_wrk(bare, body, args.duration, args.connections, tmp)
        if args.store == "both":
            # Store off, then on again, then off again: the machine is shared and its
            # load moves, so each side keeps its best of two runs.
            for name, enabled in (("off", "0"), ("on", "1"), ("off", "0")):
                with serve(
                    "liveadmin.wsgi:application",
                    env_all | {"RECENT_MESSAGES_ENABLED": enabled},
                ) as base:
                    webhook = f"{base}/webhooks/tencent?{query}"
                    warm_up(webhook, body)
                    run = run_wrk(webhook, body, args.duration, args.connections, tmp)
                key = "webhook" if name == "on" else "webhook-store-off"
                if key not in results or run["rps"] > results[key]["rps"]:
                    results[key] = run
        # The same hot path without Django's request cycle (webhooks/wsgi.py).
        with serve("webhooks.wsgi:application", env_all) as base:
            raw = f"{base}/webhooks/tencent?{query}"
            warm_up(raw, body)
            results["raw-wsgi"] = run_wrk(
                raw, body, args.duration, args.connections, tmp
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"rules: {loaded['counts']}  ({db}, {redis}; gunicorn 2 sync workers; "
        f"wrk -t2 -c{args.connections} -d{args.duration}s; body {len(body)} bytes)"
    )
    print(
        f"matcher alone: compile {loaded['compile_s']:.2f} s, "
        f"check {loaded['check_us']:.1f} µs per message ({loaded['verdict']})"
    )
    for name, r in results.items():
        print(
            f"{name:17s} {r['rps']:9.0f} req/s   p50 {r['p50_ms']:6.2f} ms   "
            f"p99 {r['p99_ms']:6.2f} ms   non-2xx {r['non_2xx']}"
            + (f"   socket errors: {r['socket_errors']}" if r["socket_errors"] else "")
        )
    if "webhook-store-off" in results:
        on, off = results["webhook"]["rps"], results["webhook-store-off"]["rps"]
        print(
            f"recent-message store: on {on:.0f} / off {off:.0f} req/s = {on / off:.2f} "
            f"(goal: at least 0.90); load {os.getloadavg()[0]:.1f}"
        )
    bare_rps = results["bare"]["rps"]
    print(
        f"ratio webhook / bare: {results['webhook']['rps'] / bare_rps:.2f}   "
        f"raw-wsgi / bare: {results['raw-wsgi']['rps'] / bare_rps:.2f}"
    )


if __name__ == "__main__":
    main()
