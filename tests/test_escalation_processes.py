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
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.test_webhook_processes import (
    add_app,
    env_for,
    gunicorn_processes,
    manage,
    shared_database,
)
from tests.webhook_support import text_body

pytestmark = pytest.mark.django_db(transaction=True)

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
    add_app(env, "escalation", APP_ID)
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
    with gunicorn_processes(
        server_env, lambda port: post(port, "warm up", "someone-else")
    ) as ports:
        yield ports, env


def until_all(
    ports: list[int], answers: Callable[[int], bool], within: float
) -> set[int]:
    """The ports whose ``answers(port)`` came true within ``within`` seconds."""
    started, done = time.monotonic(), set()
    while done != set(ports) and time.monotonic() < started + within:
        done |= {port for port in ports if port not in done and answers(port)}
    return done


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
    muted = until_all([a, b], lambda p: post(p, "hello", sender)["ErrorCode"] == 1, 3)
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
    free = until_all([a, b], lambda p: post(p, "hello", sender)["ErrorCode"] == 0, 3)
    assert free == {a, b}
