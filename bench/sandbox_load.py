"""Throughput of the sandbox's send_text_msg, before-send webhook included.

    python bench/sandbox_load.py [--requests 2000] [--threads 16] [--rooms 50]

Serves LiveAdmin with gunicorn (2 sync workers, DEBUG off) on a free 127.0.0.1 port,
on the database DATABASE_URL names when it is set (an app "bench" is created or updated
there), else on a fresh SQLite file in a temporary folder; REDIS_URL is passed through
when set, so the rate limits are shared by the workers as in production. A tiny threaded
HTTP server in this process answers the before-send and after-send webhooks with
"allow". Messages go round-robin to --rooms rooms so the 40/s room limit stays out of
the way; the 200/s API limit does not: answers with 100602 are counted apart.
Prints requests/s, p50/p99 latency and the answers by ErrorCode.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import TLSSigAPIv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.support import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP_ID = 1400888888
SECRET = "bench-secret-key-0123456789abcdef"


class Allow(BaseHTTPRequestHandler):
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


def manage(env: dict, *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rooms", type=int, default=50)
    opts = parser.parse_args()

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Allow)
    hook.daemon_threads = True
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hook.server_address[1]}/hook"

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnop",
            "LIVEADMIN_ENCRYPTION_KEY": "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0wMTIzNDU=",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SANDBOX_ENABLED": "1",
            "LIVEADMIN_VAR_DIR": tmp,
            "LIVEADMIN_SECRET": SECRET,
            "LOG_LEVEL": "WARNING",
        }
        rooms = [f"room-{i}" for i in range(opts.rooms)]
        manage(env, "migrate", "--no-input", "-v0")
        manage(
            env,
            "addapp",
            "bench",
            "--provider",
            "tencent",
            "--app-id",
            str(APP_ID),
            "--region",
            "singapore",
            "--identifier",
            "administrator",
        )
        room_args = [a for r in rooms for a in ("--room", r)]
        manage(
            env,
            "sandbox",
            "app",
            "sync",
            "--app",
            "bench",
            "--callback-url",
            hook_url,
            *room_args,
        )
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "liveadmin.wsgi",
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    httpx.get(f"{base}/accounts/login/", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            sig = TLSSigAPIv2.TLSSigAPIv2(APP_ID, SECRET).gen_sig("administrator")
            url = f"{base}/sandbox/v4/live_engine_http_srv/send_text_msg"
            query = {
                "sdkappid": APP_ID,
                "identifier": "administrator",
                "usersig": sig,
                "random": 1,
                "contenttype": "json",
            }
            local = threading.local()

            def send(i: int) -> tuple[float, int, str]:
                client = getattr(local, "client", None)
                if client is None:
                    client = local.client = httpx.Client(timeout=10)
                body = {
                    "RoomId": rooms[i % len(rooms)],
                    "Sender_Account": f"u{i % 97}",
                    "TextContent": f"message {i}",
                }
                started = time.perf_counter()
                answer = client.post(url, params=query, json=body).json()
                drop = answer.get("Response", {}).get("MsgDropReason", "")
                return time.perf_counter() - started, answer["ErrorCode"], drop

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=opts.threads) as pool:
                results = list(pool.map(send, range(opts.requests)))
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(10)
            hook.shutdown()

    latencies = sorted(r[0] for r in results)
    codes = Counter(r[1] if not r[2] else f"0/{r[2]}" for r in results)
    print(
        json.dumps(
            {
                "database": "postgresql"
                if os.environ.get("DATABASE_URL")
                else "sqlite",
                "cache": "redis" if os.environ.get("REDIS_URL") else "local memory",
                "requests": opts.requests,
                "threads": opts.threads,
                "seconds": round(elapsed, 2),
                "requests_per_second": round(opts.requests / elapsed, 1),
                "p50_ms": round(statistics.median(latencies) * 1000, 1),
                "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
                "answers_by_error_code": {
                    str(k): v for k, v in sorted(codes.items(), key=str)
                },
            }
        )
    )


if __name__ == "__main__":
    main()
