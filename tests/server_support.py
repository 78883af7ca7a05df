"""Real server processes for tests: the Procfile's web line, against a database the test
process shares with them."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "Group.CallbackBeforeSendMsg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(
    database_url: str, *, redis: str, settings_module: str = "liveadmin.settings"
) -> dict[str, str]:
    """The environment of a server process: production settings by default (the secrets
    come from the environment tests/settings.py set), or the tests' own."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE=settings_module,
        ALLOWED_HOSTS="127.0.0.1",
        # The servers behave as in production: rules built aside, decisions written by
        # the background writer.
        WEBHOOK_REBUILD_IN_BACKGROUND="1",
        WEBHOOK_RECORD_IN_BACKGROUND="1",
        # Plain HTTP on the loopback (production redirects to HTTPS behind its proxy).
        SECURE_SSL_REDIRECT="0",
        # The Procfile names commands, found on the PATH of the virtualenv.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("REDIS_URL", None)
    if redis:
        env["REDIS_URL"] = redis
    return env


def manage(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def shared_database(tmp_path: Path) -> str:
    """A DATABASE_URL other processes can open: the test database itself on
    PostgreSQL (the test commits), a fresh migrated file on SQLite."""
    if connection.vendor == "postgresql":
        s = connection.settings_dict
        password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
        return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    manage(["migrate", "--no-input"], env_for(url, redis=""))
    return url


def procfile_command(process: str) -> str:
    """The command of one Procfile line, as written."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise AssertionError(f"no {process} line in the Procfile")


def webhook_url(port: int, app_id: int, command: str = BEFORE) -> str:
    return (
        f"http://127.0.0.1:{port}/webhooks/tencent?SdkAppid={app_id}"
        f"&CallbackCommand={command}&contenttype=json"
    )


def post_json(url: str, body: bytes, timeout: float = 5) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@contextmanager
def procfile_web(env: dict[str, str], *, workers: int = 2) -> Iterator[int]:
    """The Procfile's web line (run by a shell, as a Procfile runner does) on a free
    127.0.0.1 port; yields the port once it answers. Static files are collected first,
    as before any production start (the manifest storage needs them)."""
    manage(["collectstatic", "--no-input", "--verbosity", "0"], env)
    port = free_port()
    command = procfile_command("web").replace("0.0.0.0", "127.0.0.1")
    proc = subprocess.Popen(
        ["bash", "-c", "exec " + command],
        cwd=ROOT,
        env=env | {"PORT": str(port), "WEB_CONCURRENCY": str(workers)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"{shlex.quote(command)} exited: " + (
                proc.stderr.read().decode() if proc.stderr else ""
            )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the web server did not start"
                time.sleep(0.05)  # polling a starting server
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()
