"""A change made by one process reaches every web process within two seconds.

Two gunicorn servers (one worker each: two separate processes) serve the webhook
against the same database; a third process (`manage.py blocklist add`) adds an
entry; both servers must answer with the new decision within 2 s of the commit,
with the version signalled through Redis, and without Redis (database polling).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.server_support import ROOT, free_port, manage, shared_database
from tests.server_support import env_for as server_env_for
from tests.webhook_support import text_body

pytestmark = pytest.mark.django_db(transaction=True)

APP_ID = 1400123456


def env_for(database_url: str, *, redis: str) -> dict[str, str]:
    return server_env_for(database_url, redis=redis, settings_module="tests.settings")


def post(port: int, text: str) -> dict:
    query = f"SdkAppid={APP_ID}&CallbackCommand=Group.CallbackBeforeSendMsg&contenttype=json&ClientIP=127.0.0.1&OptPlatform=RESTAPI"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/tencent?{query}",
        data=json.dumps(text_body(text)).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def add_app(env: dict[str, str], name: str, app_id: int) -> None:
    """A Tencent app, added the way an operator does (manage.py addapp)."""
    manage(
        [
            "addapp",
            name,
            "--provider",
            "tencent",
            "--app-id",
            str(app_id),
            "--region",
            "singapore",
            "--identifier",
            "administrator",
        ],
        env | {"LIVEADMIN_SECRET": f"{name}-secret-0123456789"},
    )


def wait_until_serving(
    port: int,
    proc: subprocess.Popen,
    deadline: float,
    warm_up: Callable[[int], object],
) -> None:
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            warm_up(port)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            # Still starting (a loaded machine may take its first answer past 5 s).
            time.sleep(0.05)
    raise AssertionError(f"server on {port} did not start")


@pytest.fixture
def servers(tmp_path: Path, request) -> Iterator[tuple[list[int], dict[str, str]]]:
    redis_url = request.param
    database_url = shared_database(tmp_path)
    env = env_for(database_url, redis=redis_url)
    add_app(env, "propagation", APP_ID)
    with gunicorn_processes(env, lambda port: post(port, "warm up")) as ports:
        yield ports, env


@contextmanager
def gunicorn_processes(
    env: dict[str, str], warm_up: Callable[[int], object], count: int = 2
) -> Iterator[list[int]]:
    """``count`` gunicorn servers (one worker each: separate processes) on free ports,
    each answering ``warm_up(port)`` before this yields their ports."""
    procs, ports = [], []
    for _ in range(count):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "liveadmin.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "1",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
                stderr=subprocess.PIPE,
            )
        )
        ports.append(port)
    try:
        deadline = time.monotonic() + 30
        for port, proc in zip(ports, procs, strict=True):
            wait_until_serving(port, proc, deadline, warm_up)
        yield ports
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)  # gunicorn: quick shutdown
        for proc in procs:
            proc.wait(timeout=10)
            if proc.stderr:
                proc.stderr.close()


REDIS_FOR_TESTS = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/5"


@pytest.mark.parametrize(
    "servers", [REDIS_FOR_TESTS, ""], ids=["redis", "database"], indirect=True
)
def test_a_change_reaches_every_process_within_two_seconds(servers):
    ports, env = servers
    word = f"propagated{time.time_ns()}"
    for port in ports:
        assert post(port, word)["ErrorCode"] == 0
    manage(
        [
            "blocklist",
            "add",
            "--app",
            "propagation",
            "--term",
            word,
            "--action",
            "discard",
        ],
        env,
    )
    committed = time.monotonic()
    seen: dict[int, float] = {}
    while len(seen) < len(ports) and time.monotonic() < committed + 2.0:
        for port in ports:
            if port not in seen and post(port, f"say {word}")["ErrorCode"] == 2:
                seen[port] = time.monotonic() - committed
    assert sorted(seen) == sorted(ports), f"only {seen} within 2 s"
    assert max(seen.values()) < 2.0
