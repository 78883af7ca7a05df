"""Bulk sends through real Celery worker processes (Redis broker) against the
sandbox served by live_server, including a worker killed mid-batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from liveadmin.celery import app as celery_app
from liveadmin.roles import Role
from messaging.models import Batch, BatchStatus, Outcome, SendRecord
from messaging.sandbox.models import SandboxApp, SandboxMessage
from messaging.services import batches
from tests.factories import make_app, make_sandbox_app, make_user
from tests.sandbox_support import WebhookReceiver

BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/9"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/8"
TEXT = {"sender": "host-1", "text": "Giveaway in room!"}
BEFORE_SEND = "Group.CallbackBeforeSendMsg"

pytestmark = pytest.mark.django_db(transaction=True)


def database_url() -> str:
    """The test database, as the worker processes must reach it."""
    db = django_settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def await_state(check, *, timeout: float = 60.0, what: str = "state"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Worker:
    """``celery -A liveadmin worker`` in its own process group, logging to a file."""

    def __init__(self, log: Path, *, concurrency: int = 2) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": BROKER_URL,
            "REDIS_URL": REDIS_URL,
            "SEND_CLAIM_TIMEOUT": "2",
        }
        self.log = log
        self.output = log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "liveadmin",
                "worker",
                "-l",
                "info",
                "-c",
                str(concurrency),
                "-n",
                f"test-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        await_state(
            lambda: self.process.poll() is not None or " ready." in log.read_text(),
            what="the worker to start",
        )
        assert self.process.poll() is None, log.read_text()

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes: no cleanup, no acks."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.output.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.output.close()


@pytest.fixture
def broker(settings):
    """This process enqueues through the Redis broker (as the web process does)."""
    settings.CELERY_BROKER_URL = BROKER_URL
    settings.REDIS_URL = REDIS_URL
    saved = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    celery_app.conf.broker_url = BROKER_URL
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()
    yield
    celery_app.control.purge()
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = saved


@pytest.fixture
def workers(broker, tmp_path):
    started: list[Worker] = []

    def start(**kwargs) -> Worker:
        worker = Worker(tmp_path / f"worker-{len(started)}.log", **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


def delivered_per_room(app) -> Counter:
    return Counter(
        SandboxMessage.objects.filter(room__app__app_id=app.app_id).values_list(
            "room__room_id", flat=True
        )
    )


def test_it_sends_a_batch_through_a_real_worker(live_server, hook, workers):
    workers(concurrency=2)
    manager = make_user("manager1", role=Role.MANAGER)
    rooms = [f"room-{i}" for i in range(30)]
    app = make_app(base_url=f"{live_server.url}/sandbox")
    make_sandbox_app(app, rooms=tuple(rooms), callback_url=hook.url)
    batch = batches.start_batch(app, "text", TEXT, rooms, actor=manager)
    await_state(
        lambda: Batch.objects.filter(pk=batch.pk, status=BatchStatus.DONE).exists(),
        what="the batch to finish",
    )
    assert batch.progress()["ok"] == 30
    assert delivered_per_room(app) == Counter(dict.fromkeys(rooms, 1))
    assert set(batch.records.values_list("attempts", flat=True)) == {1}


def test_it_recovers_a_batch_when_a_worker_is_killed(
    live_server, hook, workers, settings
):
    # The sandbox refuses (80003) a message whose before-send callback fails, so
    # a request held at the callback when the worker dies is never delivered.
    settings.SANDBOX_CALLBACK_TIMEOUT = 0.5
    first = workers(concurrency=2)
    manager = make_user("manager1", role=Role.MANAGER)
    rooms = [f"room-{i}" for i in range(40)]
    app = make_app(base_url=f"{live_server.url}/sandbox", rate_limit=20)
    make_sandbox_app(app, rooms=tuple(rooms), callback_url=hook.url)
    SandboxApp.objects.filter(app_id=app.app_id).update(failure_policy="reject")
    batch = batches.start_batch(app, "text", TEXT, rooms, actor=manager)
    records = SendRecord.objects.filter(batch=batch)
    answered = records.exclude(outcome=Outcome.WAITING)
    await_state(lambda: answered.count() >= 10, what="some rooms to be sent")

    # Hold the next request at the callback, and kill the worker while it waits.
    held = threading.Event()
    hook.hold = held
    while not hook.hits.empty():
        hook.hits.get_nowait()
    hook.next(BEFORE_SEND, timeout=10)
    delivered = SandboxMessage.objects.filter(room__app__app_id=app.app_id)
    await_state(
        lambda: delivered.count() == answered.count(), what="answers to be recorded"
    )
    first.kill()
    before = {
        r.pk: (r.outcome, r.request_id, r.msg_seq, r.attempts) for r in answered.all()
    }
    assert len(before) < len(rooms)
    # New callbacks pass again; the held one stays held until the sandbox gives
    # up on it (0.5 s) and refuses that message (80003) to the dead worker.
    hook.hold = None

    workers(concurrency=2)
    await_state(
        lambda: Batch.objects.filter(pk=batch.pk, status=BatchStatus.DONE).exists(),
        what="the batch to finish after recovery",
    )
    assert not records.filter(outcome=Outcome.WAITING).exists()
    assert records.filter(outcome=Outcome.OK).count() == 40
    # Every room got the message exactly once, and rows answered before the
    # kill were not sent again.
    assert delivered_per_room(app) == Counter(dict.fromkeys(rooms, 1))
    for pk, state in before.items():
        r = records.get(pk=pk)
        assert (r.outcome, r.request_id, r.msg_seq, r.attempts) == state
    assert set(delivered.values_list("msg_seq", flat=True)) == {1}
    held.set()
