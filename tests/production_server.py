"""The production web server, started the way the Procfile's `web` line says.

The command lives here once: the Procfile's `web:` line when the repository has a
Procfile, else FALLBACK_WEB (the same server the Procfile names today), with
$PORT and $WEB_CONCURRENCY filled in.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

FALLBACK_WEB = "gunicorn liveadmin.wsgi --bind 127.0.0.1:$PORT --workers $WEB_CONCURRENCY --access-logfile -"


def web_line() -> str:
    procfile = Path(settings.BASE_DIR) / "Procfile"
    if procfile.exists():
        for line in procfile.read_text().splitlines():
            if line.startswith("web:"):
                return line.removeprefix("web:").strip()
    return FALLBACK_WEB


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebServer:
    """The `web` process on 127.0.0.1, stdout and stderr into one log file."""

    def __init__(self, log: Path, env: dict[str, str], *, concurrency: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**env, "PORT": str(self.port), "WEB_CONCURRENCY": str(concurrency)}
        command = web_line()
        for name in ("PORT", "WEB_CONCURRENCY"):
            command = command.replace(f"${{{name}}}", env[name]).replace(
                f"${name}", env[name]
            )
        self.output = log.open("w")
        # The server's executable from this virtualenv, as `make` puts it on PATH.
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        self.process = subprocess.Popen(
            shlex.split(command),
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the web server did not start: {log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.output.close()
