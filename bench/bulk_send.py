"""Benchmark: bulk sends through the real path, at the provider's limit of 200/s.

Modes:
- ``worker`` (default): PostgreSQL (or SQLite) + Redis + Celery workers started from
  the Procfile's ``worker`` line; a batch of N room text messages (start_batch ->
  runner tasks -> shared Redis rate bucket -> provider over HTTP).
- ``embedded``: the embedded default: SQLite, no broker, no Redis:
  ``manage.py sendmsg text --rooms-file`` runs the batch on threads in its process.

The provider is a bare stand-in (``--provider stub``: no Django, no database; it
enforces 200 requests in any sliding second, answers 100602 beyond, and reports
the most requests it saw in any one-second window) or the sandbox under gunicorn.

Printed, as ratios measured in this run: throughput / 200/s, throughput / a bare
paced client's (the same stand-in, the same machine, the same moment: what is
reachable now), worker CPU ms per send, frequency-limit answers, the most
requests in any second at the stand-in, and the load average.

    python bench/bulk_send.py [--mode worker|embedded] [--rooms 2000] [--workers 1]
        [--pool threads|prefork|solo] [--concurrency 8] [--provider stub|sandbox]
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
import re
import resource
import shlex
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
sys.path.insert(0, str(BASE_DIR))
from bench.support import free_port  # noqa: E402

FREQUENCY_CODES = {60007, 60011, 60018, 60019, 10023, 10006, 100602, 206, 207, 7}


# --provider stub: a bare HTTP server standing in for Tencent (no Django, no
# database), to measure LiveAdmin's side alone. It answers send_text_msg like
# the API and enforces 200 requests in any sliding second (100602 beyond).
STUB = r"""
import bisect, collections, json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
limit = int(sys.argv[1])
window = collections.deque()
stamps = []
lock = threading.Lock()
seq = 0
limited = 0
def max_in_any_second():
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, payload):
        # Headers and body in one write: two small writes meet the client's
        # delayed ACK (40 ms) on a kept-alive connection.
        body = json.dumps(payload).encode()
        head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.wfile.write(head + body)
        self.wfile.flush()
    def do_GET(self):
        with lock:
            self.answer({"count": len(stamps), "limited": limited,
                         "max_in_any_second": max_in_any_second()})
    def do_POST(self):
        global seq, limited
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        now = time.monotonic()
        with lock:
            stamps.append(now)
            while window and now - window[0] >= 1.0:
                window.popleft()
            over = len(window) >= limit
            if over:
                limited += 1
            else:
                window.append(now)
                seq += 1
            n = seq
        if over:
            self.answer({"ActionStatus": "FAIL", "ErrorCode": 100602,
                         "ErrorInfo": "API call frequency over limit", "RequestId": f"stub-{now}"})
        else:
            self.answer({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "",
                         "RequestId": f"stub-{n}", "Response": {"MsgSeq": 1,
                         "MsgTime": int(time.time()), "MsgDropReason": ""}})
    def log_message(self, *args):
        pass
ThreadingHTTPServer.request_queue_size = 256  # no resets when many connect at once
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


def procfile_worker(pool: str | None, concurrency: int | None) -> list[str]:
    """The Procfile's worker line as argv (its ${VAR:-default}s filled in), with the
    pool or concurrency overridden for a measurement."""
    line = next(
        raw.split(":", 1)[1]
        for raw in (BASE_DIR / "Procfile").read_text().splitlines()
        if raw.startswith("worker:")
    )
    line = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", line)
    argv = shlex.split(line)
    for flag, value in (("--pool", pool), ("--concurrency", concurrency)):
        if value is not None:
            argv[argv.index(flag) + 1] = str(value)
    argv[argv.index("--loglevel") + 1] = "warning"
    return [sys.executable, "-m", *argv]


def profile_path(path: str, i: int) -> str:
    return path if i == 0 else f"{path}-{i}"


def profiled_worker(argv: list[str], profile: str) -> list[str]:
    """The worker's argv, run under bench/profile_cpu.py when ``profile`` is set."""
    if not profile:
        return argv
    python, *rest = argv
    return [python, str(BASE_DIR / "bench" / "profile_cpu.py"), profile, *rest]


def stand_in(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", STUB, "200", str(port)], start_new_session=True
    )
    wait_until(lambda: port_open(port), 30, "the stand-in")
    return process


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stub_stats(port: int) -> dict:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/stats", timeout=30).json()


def bare_client_baseline(count: int, rate: float) -> dict:
    """A bare paced client: ``count`` POSTs at ``rate``/s from 16 threads with one
    pooled httpx client, to a fresh stand-in. The same pacing as LiveAdmin, none of
    its work: the reachable throughput on this machine right now."""
    import httpx

    port = free_port()
    server = stand_in(port)
    try:
        client = httpx.Client(limits=httpx.Limits(max_connections=32))
        url = f"http://127.0.0.1:{port}/v4/live_engine_http_srv/send_text_msg"
        start = time.monotonic() + 0.1
        lock = threading.Lock()
        done = [0]

        def send(i: int) -> None:
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            client.post(url, content=b'{"RoomId":"r","TextContent":"x"}')
            with lock:
                done[0] += 1

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(send, range(count)))
        wall = time.monotonic() - start
        stats = stub_stats(port)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
    return {"per_second": count / wall, "limited": stats["limited"]}


def setup_env(database_url: str, tmp: Path, *, embedded: bool) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "liveadmin.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": ""
        if embedded
        else os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/8",
        "CELERY_BROKER_URL": ""
        if embedded
        else os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/9",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "LIVEADMIN_ENCRYPTION_KEY": "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0wMTIzNDU=",
        "SANDBOX_ENABLED": "1",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "LIVEADMIN_VAR_DIR": str(tmp),
        "EMBEDDED_SCHEDULER": "0",
    }
    env.pop("PYTEST_VERSION", None)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="worker", choices=["worker", "embedded"])
    parser.add_argument("--rooms", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--pool",
        default=None,
        choices=["threads", "prefork", "solo"],
        help="override the Procfile's --pool",
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="override the Procfile's"
    )
    parser.add_argument("--provider", default="stub", choices=["sandbox", "stub"])
    parser.add_argument("--web-workers", type=int, default=8)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument(
        "--profile",
        default="",
        help="write the sender's CPU profile here (bench/profile_cpu.py: every "
        "thread on its own CPU clock): the sendmsg process, or each worker "
        "process (a -<n> suffix from the second on); profiling adds CPU itself",
    )
    args = parser.parse_args()
    embedded = args.mode == "embedded"

    tmp = Path(tempfile.mkdtemp(prefix="bench-bulk-send-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    if embedded:
        database_url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    if database_url.startswith(("postgres://", "postgresql://")):
        ensure_postgres_database(database_url)
    env = setup_env(database_url, tmp, embedded=embedded)
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
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db.models import Max

    from liveadmin.roles import Role
    from messaging.models import Batch, BatchStatus, ProviderApp, SendRecord
    from messaging.services import batches

    hook = ThreadingHTTPServer(("127.0.0.1", 0), AllowHook)
    hook.daemon_threads = True
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hook.server_address[1]}/hook"

    rate = 200.0
    baseline = bare_client_baseline(min(args.rooms, 1000), rate * 0.95)

    port = free_port()
    if args.provider == "stub":
        web = stand_in(port)
    else:
        web = subprocess.Popen(
            [
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
        wait_until(lambda: port_open(port), 30, "gunicorn")
    worker_procs: list[subprocess.Popen] = []
    logs = []
    try:
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
        if args.provider == "sandbox":
            from messaging.sandbox.models import SandboxRoom
            from messaging.sandbox.services import mirror_provider_app

            sandbox = mirror_provider_app(app, callback_url=hook_url)
            SandboxRoom.objects.bulk_create(
                SandboxRoom(app=sandbox, room_id=r) for r in rooms
            )
        fields = {"sender": "host-1", "text": "Bench message"}

        if embedded:
            rooms_file = tmp / "rooms.txt"
            rooms_file.write_text("\n".join(rooms))
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            done = subprocess.run(
                [
                    sys.executable,
                    *(["bench/profile_cpu.py", args.profile] if args.profile else []),
                    "manage.py",
                    "sendmsg",
                    "text",
                    "--app",
                    name,
                    "--as",
                    "bench-manager",
                    "--rooms-file",
                    str(rooms_file),
                    "--sender",
                    "host-1",
                    "--text",
                    "Bench message",
                ],
                cwd=BASE_DIR,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            wall = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (
                before.ru_utime + before.ru_stime
            )
            batch = Batch.objects.get(app=app)
            queued = started
            if done.returncode not in (0, 1):
                raise SystemExit(f"sendmsg failed with {done.returncode}")
        else:
            from liveadmin.celery import app as celery_app

            celery_app.control.purge()
            import redis

            redis.Redis.from_url(env["REDIS_URL"]).delete(
                f"liveadmin:ratelimit:tencent:{app.app_id}:live_engine"
            )
            for i in range(args.workers):
                log = (tmp / f"worker-{i}.log").open("w")
                logs.append(log)
                worker_procs.append(
                    subprocess.Popen(
                        [
                            *profiled_worker(
                                procfile_worker(args.pool, args.concurrency),
                                args.profile and profile_path(args.profile, i),
                            ),
                            "-n",
                            f"bench-{os.getpid()}-{i}@%h",
                            "--without-gossip",
                            "--without-mingle",
                        ],
                        cwd=BASE_DIR,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            names = [
                f"bench-{os.getpid()}-{i}@{socket.gethostname()}"
                for i in range(args.workers)
            ]
            wait_until(
                lambda: (
                    len(celery_app.control.ping(names, timeout=0.5)) == args.workers
                ),
                60,
                "the workers",
            )
            cpu_before = sum(group_cpu_seconds(p.pid) for p in worker_procs)
            started = time.monotonic()
            batch = batches.start_batch(app, "text", fields, rooms, actor=user)
            queued = time.monotonic()
            wait_until(
                lambda: Batch.objects.filter(
                    pk=batch.pk, status__in=[BatchStatus.DONE, BatchStatus.PAUSED]
                ).exists(),
                900,
                "the batch",
            )
            wall = time.monotonic() - started
            cpu = sum(group_cpu_seconds(p.pid) for p in worker_procs) - cpu_before
        batch.refresh_from_db()
        records = SendRecord.objects.filter(batch=batch)
        progress = batch.progress()
        retried = sum(
            a - 1 for a in records.values_list("attempts", flat=True) if a > 1
        )
        stand_in_stats = stub_stats(port) if args.provider == "stub" else {}
        per_second = progress["answered"] / wall
        # The batch alone: from its start to its last answer (without the command's
        # start-up, or the workers' pick-up of the task).
        last_answer = records.aggregate(at=Max("updated_at"))["at"]
        sending = (last_answer - batch.started_at).total_seconds()
        sending_per_second = progress["answered"] / sending
        figures = {
            "mode": args.mode,
            "rooms": args.rooms,
            "status": batch.status,
            "ok": progress["ok"],
            "failed": progress["failed"],
            "unknown": progress["unknown"],
            "wall_seconds": round(wall, 2),
            "allowed_seconds": round(args.rooms / rate, 2),
            "create_and_queue_seconds": round(queued - started, 2),
            "throughput_per_second": round(per_second, 1),
            "ratio_to_200_per_second": round(per_second / rate, 3),
            "batch_start_to_last_answer_seconds": round(sending, 2),
            "ratio_to_200_per_second_while_sending": round(
                sending_per_second / rate, 3
            ),
            "bare_client_per_second": round(baseline["per_second"], 1),
            "ratio_to_bare_client": round(per_second / baseline["per_second"], 3),
            "frequency_limit_answers": stand_in_stats.get("limited", retried),
            "max_requests_in_any_second_at_stand_in": stand_in_stats.get(
                "max_in_any_second"
            ),
            "retried_attempts": retried,
            "cpu_ms_per_send": round(1000 * cpu / args.rooms, 2),
            "cpu_measured": "sendmsg process" if embedded else "worker processes",
            "workers": 0 if embedded else args.workers,
            "worker_argv": ""
            if embedded
            else " ".join(procfile_worker(args.pool, args.concurrency)[2:]),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
            "provider": args.provider,
            "database": database_url.split(":", 1)[0],
        }
        print(
            f"bulk_send ({args.mode}, {args.provider}, {figures['database']}): "
            f"{args.rooms} rooms in {wall:.2f} s = {per_second:.1f}/s = "
            f"{figures['ratio_to_200_per_second']}x of 200/s "
            f"({figures['ratio_to_200_per_second_while_sending']}x from the batch's "
            f"start to its last answer) "
            f"({figures['ratio_to_bare_client']}x of a bare paced client's "
            f"{baseline['per_second']:.1f}/s now); {figures['cpu_ms_per_send']} ms CPU "
            f"per send; frequency-limit answers: {figures['frequency_limit_answers']}; "
            f"most requests in any second: "
            f"{figures['max_requests_in_any_second_at_stand_in']}; "
            f"load {figures['load_average_1min']}"
        )
        print(json.dumps(figures))
    finally:
        for process in (*worker_procs, web):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in (*worker_procs, web):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for log in logs:
            log.close()
        hook.shutdown()


if __name__ == "__main__":
    main()
