"""No log line of any process LiveAdmin starts holds a UserSig, a Signature, a secret
or a webhook token: the production web server (the Procfile's `web` line, its access log
included) serving the dashboard, the sandbox and the webhook; `manage.py sendmsg`
sending a Tencent text, a ZEGO command and a batch; and a Celery worker sending the
batch. Every log is read back and searched."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from liveadmin.roles import Role
from messaging.models import SendRecord
from messaging.sandbox.models import SandboxMessage
from tests.factories import make_app, make_sandbox_app, make_user
from tests.production_server import WebServer
from tests.test_celery_worker import (
    BROKER_URL,
    REDIS_URL,
    Worker,
    await_state,
    database_url,
)

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "tencent-secret-key-0123456789abcdef-LOGCHECK"
ZEGO_SECRET = "0123456789abcdef0123456789LOGZEGO"
WEBHOOK_TOKEN = "webhook-token-LOGCHECK-98765"
# A Tencent UserSig is base64 of zlib data: it starts with "eJ" (0x78 0x9c).
USERSIG = re.compile(r"eJ[\w*\-]{40,}")
SIGNED_PARAM = re.compile(
    r"(?i)\b(usersig|signature|sign|token|secret)=(?!\[redacted\])[^&\s\"']+"
)


def process_env() -> dict[str, str]:
    """What a deployment sets (DEBUG off), pointing at the test database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "liveadmin.settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": BROKER_URL,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SANDBOX_ENABLED": "1",
        "LOG_LEVEL": "DEBUG",
    }


def manage(log: Path, *args: str) -> subprocess.CompletedProcess:
    with log.open("a") as out:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=process_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
        )


@pytest.fixture
def web(tmp_path):
    server = WebServer(tmp_path / "web.log", process_env())
    yield server
    server.stop()


@pytest.fixture
def worker(tmp_path, settings):
    started = Worker(tmp_path / "worker.log")
    yield started
    started.stop()


def test_no_log_line_holds_a_signature_or_secret(web, worker, tmp_path):
    make_user("cli-manager", role=Role.MANAGER)
    tencent = make_app(
        name="logcheck",
        app_id=1400000777,
        secret_key=SECRET,
        webhook_token=WEBHOOK_TOKEN,
        base_url=web.url + "/sandbox",
    )
    make_sandbox_app(
        tencent,
        rooms=("room-1", "room-2", "room-3"),
        callback_url=web.url + "/webhooks/tencent",
    )
    zego = make_app(
        name="logzego",
        provider="zego",
        app_id=1700000777,
        secret_key=ZEGO_SECRET,
        identifier="zego-host",
        base_url=web.url + "/sandbox/zego",
    )
    make_sandbox_app(zego, rooms=("stage",))
    log = tmp_path / "manage.log"
    text = [
        "sendmsg",
        "text",
        "--app",
        "logcheck",
        "--as",
        "cli-manager",
        "--sender",
        "host1",
    ]
    assert manage(log, *text, "--room", "room-1", "--text", "hello").returncode == 0, (
        log.read_text()
    )
    rooms = tmp_path / "rooms.txt"
    rooms.write_text("room-2\nroom-3\n")
    assert (
        manage(log, *text, "--rooms-file", str(rooms), "--text", "batch").returncode
        == 0
    ), log.read_text()
    command = ["sendmsg", "command", "--app", "logzego", "--as", "cli-manager"]
    command += ["--room", "stage", "--from", "zego-host"]
    assert manage(log, *command, "--content", "ping").returncode == 0, log.read_text()
    await_state(
        lambda: not SendRecord.objects.filter(outcome="waiting").exists(),
        what="the batch to be sent by the worker",
    )
    assert SandboxMessage.objects.count() == 4
    assert set(SendRecord.objects.values_list("outcome", flat=True)) == {"ok"}
    web.stop()
    worker.stop()

    logs = {p.name: p.read_text() for p in tmp_path.glob("*.log")}
    assert set(logs) >= {"web.log", "worker.log", "manage.log"}
    # The logs are there and hold the requests (so the search below can fail).
    assert "POST /sandbox/v4/live_engine_http_srv/send_text_msg HTTP" in logs["web.log"]
    # The webhook's calls are counted, not logged line by line (liveadmin/access_log.py).
    assert "/webhooks/tencent" not in logs["web.log"]
    assert "GET /sandbox/zego/ HTTP" in logs["web.log"]
    assert "succeeded" in logs["worker.log"] or "Task" in logs["worker.log"]
    for name, text in logs.items():
        for secret in (SECRET, ZEGO_SECRET, WEBHOOK_TOKEN):
            assert secret not in text, (name, secret)
        assert not USERSIG.search(text), (name, USERSIG.search(text))
        assert not SIGNED_PARAM.search(text), (name, SIGNED_PARAM.search(text))
