"""Benchmark: 2,000 rooms of text messages through the real bulk-send path.

Starts the sandbox provider under gunicorn on a free 127.0.0.1 port, a Celery
worker against a Redis broker, and a tiny before-send webhook that allows every
message; then creates one batch of 2,000 room text messages (the browser's
path: start_batch -> Celery tasks -> shared Redis rate limiter -> sandbox over
HTTP) and waits until every room has an answer.

Prints the wall time against the 10.0 s that 200/s allows, the throughput, and
the count of frequency-limit errors (must be 0).

    python bench/bulk_send.py [--rooms 2000] [--concurrency 24] [--pool threads|prefork]
        [--web-workers 8] [--provider sandbox|stub]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_batches]

Environment: DATABASE_URL (default: a temporary SQLite file), REDIS_URL
(default redis://127.0.0.1:6379/8), CELERY_BROKER_URL (default
redis://127.0.0.1:6379/9).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
FREQUENCY_CODES = {60007, 60011, 60018, 60019, 10023, 10006, 100602, 206, 207, 7}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --provider stub: a bare HTTP server standing in for Tencent (no Django, no
# database), to measure LiveAdmin's side alone. It answers send_text_msg like
# the API and enforces 200 requests in any sliding second (100602 beyond).
STUB = r"""
import collections, json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
limit = int(sys.argv[1])
stamps = collections.deque()
lock = threading.Lock()
seq = 0
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global seq
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        now = time.monotonic()
        with lock:
            while stamps and now - stamps[0] >= 1.0:
                stamps.popleft()
            limited = len(stamps) >= limit
            if not limited:
                stamps.append(now)
                seq += 1
            n = seq
        if limited:
            answer = {"ActionStatus": "FAIL", "ErrorCode": 100602,
                      "ErrorInfo": "API call frequency over limit", "RequestId": f"stub-{now}"}
        else:
            answer = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "",
                      "RequestId": f"stub-{n}", "Response": {"MsgSeq": 1,
                      "MsgTime": int(time.time()), "MsgDropReason": ""}}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
server.daemon_threads = True
server.serve_forever()
"""


class AllowHook(BaseHTTPRequestHandler):
    """The app's before-send webhook: allow everything."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def ensure_postgres_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = (
        parts._replace(path="/postgres")
        .geturl()
        .replace("postgres://", "postgresql://", 1)
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in a process group (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid pgrp ... utime(12th) stime(13th).
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=2000)
    parser.add_argument(
        "--concurrency", type=int, default=24, help="Celery worker pool size"
    )
    # Sends mostly wait on the network and the limiter: threads saturate 200/s
    # with less memory and CPU than prefork processes on a small machine.
    parser.add_argument("--pool", default="threads", choices=["prefork", "threads"])
    parser.add_argument(
        "--provider",
        default="sandbox",
        choices=["sandbox", "stub"],
        help="sandbox: the sandbox under gunicorn (default); stub: a bare HTTP "
        "stand-in, to measure LiveAdmin's side alone",
    )
    parser.add_argument(
        "--web-workers",
        type=int,
        default=8,
        help="gunicorn workers serving the sandbox",
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-bulk-send-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    if database_url.startswith(("postgres://", "postgresql://")):
        ensure_postgres_database(database_url)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "liveadmin.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/8",
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL")
        or "redis://127.0.0.1:6379/9",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "LIVEADMIN_ENCRYPTION_KEY": "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0wMTIzNDU=",
        "SANDBOX_ENABLED": "1",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "LIVEADMIN_VAR_DIR": str(tmp),
    }
    env.pop("PYTEST_VERSION", None)
    os.environ.update(env)
    sys.path.insert(0, str(BASE_DIR))

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
    )

    import django

    django.setup()
    import redis
    from django.contrib.auth.models import Group
    from django.db.models import Max, Min

    from liveadmin.celery import app as celery_app
    from liveadmin.roles import Role
    from messaging.models import Batch, BatchStatus, ProviderApp, SendRecord
    from messaging.sandbox.models import SandboxApp, SandboxRoom
    from messaging.sandbox.services import mirror_provider_app
    from messaging.services import batches

    hook = ThreadingHTTPServer(("127.0.0.1", 0), AllowHook)
    hook.daemon_threads = True
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hook.server_address[1]}/hook"

    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-c", STUB, "200", str(port)]
        if args.provider == "stub"
        else [
            sys.executable,
            "-m",
            "gunicorn",
            "liveadmin.wsgi",
            "-w",
            str(args.web_workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=BASE_DIR,
        env=env,
        start_new_session=True,
    )
    log = (tmp / "worker.log").open("w")
    celery_app.control.purge()
    worker_name = f"bench-{os.getpid()}@{socket.gethostname()}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "liveadmin",
            "worker",
            "-l",
            "warning",
            "-c",
            str(args.concurrency),
            "-P",
            args.pool,
            "-n",
            worker_name,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # Ready once it answers a remote-control ping (its log is at WARNING).
        wait_until(
            lambda: bool(celery_app.control.ping([worker_name], timeout=0.5)),
            60,
            "the worker",
        )

        def web_up() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_until(web_up, 30, "gunicorn")

        from django.contrib.auth import get_user_model

        user, _ = get_user_model().objects.get_or_create(username="bench-manager")
        user.groups.add(Group.objects.get(name=Role.MANAGER.value))
        name = f"bench-{int(time.time())}"
        app = ProviderApp.objects.create(
            name=name,
            provider="tencent",
            app_id=1500000000 + int(time.time()) % 10_000_000,
            region="singapore",
            identifier="administrator",
            secret_key="bench-secret-key-0123456789abcdef",
            base_url=f"http://127.0.0.1:{port}/sandbox",
        )
        rooms = [f"bench-room-{i}" for i in range(args.rooms)]
        sandbox = mirror_provider_app(app, callback_url=hook_url)
        SandboxRoom.objects.bulk_create(
            SandboxRoom(app=sandbox, room_id=r) for r in rooms
        )
        assert SandboxApp.objects.filter(pk=sandbox.pk).exists()
        redis.Redis.from_url(env["REDIS_URL"]).delete(
            f"liveadmin:ratelimit:tencent:{app.app_id}:live_engine"
        )
        rate = 200.0
        fields = {"sender": "host-1", "text": "Bench message"}

        cpu_before = {
            "celery": group_cpu_seconds(worker.pid),
            "provider": group_cpu_seconds(web.pid),
        }
        started = time.monotonic()
        batch = batches.start_batch(app, "text", fields, rooms, actor=user)
        queued = time.monotonic()
        wait_until(
            lambda: Batch.objects.filter(
                pk=batch.pk, status__in=[BatchStatus.DONE, BatchStatus.PAUSED]
            ).exists(),
            600,
            "the batch",
        )
        wall = time.monotonic() - started
        cpu = {
            "celery": group_cpu_seconds(worker.pid) - cpu_before["celery"],
            "provider": group_cpu_seconds(web.pid) - cpu_before["provider"],
        }
        batch.refresh_from_db()
        records = SendRecord.objects.filter(batch=batch)
        progress = batch.progress()
        retried = sum(
            a - 1 for a in records.values_list("attempts", flat=True) if a > 1
        )
        freq_final = records.filter(error_code__in=FREQUENCY_CODES).count()
        freq_dropped = records.filter(drop_reason="MsgFreqCtrl").count()
        claims = records.aggregate(first=Min("claimed_at"), last=Max("claimed_at"))
        span = (
            (claims["last"] - claims["first"]).total_seconds()
            if claims["first"]
            else 0.0
        )
        figures = {
            "rooms": args.rooms,
            "status": batch.status,
            "ok": progress["ok"],
            "failed": progress["failed"],
            "dropped": progress["dropped"],
            "wall_seconds": round(wall, 2),
            "allowed_seconds": round(args.rooms / rate, 2),
            "create_and_queue_seconds": round(queued - started, 2),
            "first_to_last_send_seconds": round(span, 2),
            "throughput_per_second": round(progress["answered"] / wall, 1),
            "frequency_limit_errors": freq_final + freq_dropped + retried,
            "retried_attempts": retried,
            "cpu_ms_per_send_celery_worker": round(
                1000 * cpu["celery"] / args.rooms, 2
            ),
            "cpu_ms_per_send_provider": round(1000 * cpu["provider"] / args.rooms, 2),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
            "provider": args.provider,
            "celery_concurrency": args.concurrency,
            "celery_pool": args.pool,
            "gunicorn_workers": args.web_workers,
            "database": database_url.split(":", 1)[0],
        }
        print(
            f"bulk_send ({args.provider}): {args.rooms} rooms in {wall:.2f} s wall "
            f"(the 200/s limit allows {args.rooms / rate:.1f} s); "
            f"{progress['ok']} ok, {progress['failed']} failed; "
            f"frequency-limit errors: {figures['frequency_limit_errors']}"
        )
        print(json.dumps(figures))
    finally:
        for process in (worker, web):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in (worker, web):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()
        hook.shutdown()


if __name__ == "__main__":
    main()
