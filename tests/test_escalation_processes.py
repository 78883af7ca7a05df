"""Escalation across two real web processes sharing Redis: after N hits, the (N+1)th
message is muted whichever process answers it.

Two gunicorn servers (one worker each) serve the webhook against the same database
and Redis. The app's rule masks "darn"; its escalation rule mutes after 3 hits within
60 s. The hits alternate between the processes; the 4th masked-word message gets
ErrorCode 1 (muted) instead of a masked body from both, and a clean message from the
same sender is muted too once the stored sanction reached the other process.
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
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_webhook_processes import env_for, free_port, manage, shared_database
from tests.webhook_support import text_body

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
APP_ID = 1400654321
REDIS_FOR_TESTS = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/5"


def post(port: int, text: str, sender: str, *, timeout: float = 5) -> dict:
    query = f"SdkAppid={APP_ID}&CallbackCommand=Group.CallbackBeforeSendMsg&contenttype=json&ClientIP=127.0.0.1&OptPlatform=RESTAPI"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/tencent?{query}",
        data=json.dumps(text_body(text, sender=sender)).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[list[int], dict[str, str]]]:
    env = env_for(shared_database(tmp_path), redis=REDIS_FOR_TESTS)
    env["RECENT_MESSAGES_ENABLED"] = "1"
    # Production settings for the servers: their background writers store what
    # escalation imposes (the test settings turn the writers off).
    server_env = env | {"DJANGO_SETTINGS_MODULE": "liveadmin.settings"}
    manage(
        [
            "addapp",
            "escalation",
            "--provider",
            "tencent",
            "--app-id",
            str(APP_ID),
            "--region",
            "singapore",
            "--identifier",
            "administrator",
        ],
        env | {"LIVEADMIN_SECRET": "escalation-secret-0123456789"},
    )
    manage(
        [
            "blocklist",
            "add",
            "--app",
            "escalation",
            "--term",
            "darn",
            "--action",
            "mask",
        ],
        env,
    )
    manage(
        [
            "moderation",
            "escalation",
            "--app",
            "escalation",
            "--hits",
            "3",
            "--within",
            "60",
            "--mute",
            "10",
        ],
        env,
    )
    procs, ports = [], []
    for _ in range(2):
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
                env=server_env,
                stderr=subprocess.PIPE,
            )
        )
        ports.append(port)
    try:
        deadline = time.monotonic() + 60
        for port, proc in zip(ports, procs, strict=True):
            while True:
                assert proc.poll() is None, proc.stderr and proc.stderr.read().decode()
                try:
                    # A cold worker imports and builds its rules on the first call.
                    post(port, "warm up", "someone-else", timeout=30)
                    break
                except (urllib.error.URLError, OSError):
                    assert time.monotonic() < deadline, (
                        f"server on {port} did not start"
                    )
                    time.sleep(0.1)  # polling a starting server
        yield ports, env
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            proc.wait(timeout=10)
            if proc.stderr:
                proc.stderr.close()


def test_the_hit_after_n_is_muted_whichever_process_answers(servers):
    (a, b), env = servers
    sender = f"spammer-{time.time_ns()}"
    # Three hits, alternating processes: masked, as the rule says.
    for port in (a, b, a):
        answer = post(port, "darn it", sender)
        assert answer["ErrorCode"] == 0 and "MsgBody" in answer, answer
    # The fourth hit: muted by either process (the shared window says 4 > 3).
    assert post(b, "darn again", sender) == {
        "ActionStatus": "OK",
        "ErrorInfo": "",
        "ErrorCode": 1,
    }
    assert post(a, "darn darn", sender)["ErrorCode"] == 1
    # Another sender is not affected.
    assert post(b, "darn", "bystander")["ErrorCode"] == 0
    # A clean message from the muted sender: muted by both once the sanction the
    # first process stored reached the second (rules version; well under 2 s).
    started = time.monotonic()
    muted: set[int] = set()
    while muted != {a, b} and time.monotonic() < started + 3:
        for port in (a, b):
            if port not in muted and post(port, "hello", sender)["ErrorCode"] == 1:
                muted.add(port)
    assert muted == {a, b}, f"only {muted} muted a clean message within 3 s"
    assert post(a, "hello", "bystander")["ErrorCode"] == 0
    # The stored sanction, lifted from a script: both processes let the sender speak.
    [lifted] = [
        json.loads(line)
        for line in manage(
            ["moderation", "unmute", "--app", "escalation", "--user", sender], env
        ).splitlines()
    ]
    assert (lifted["source"], lifted["room"], lifted["kind"]) == (
        "escalation",
        None,
        "mute",
    )
    started = time.monotonic()
    free: set[int] = set()
    while free != {a, b} and time.monotonic() < started + 3:
        for port in (a, b):
            if port not in free and post(port, "hello", sender)["ErrorCode"] == 0:
                free.add(port)
    assert free == {a, b}
