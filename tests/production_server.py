"""The production web server, started the way the Procfile's `web` line says, with
$PORT and $WEB_CONCURRENCY filled in and everything it prints kept in a log file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

from tests.server_support import free_port, procfile_command


class WebServer:
    """The `web` process on 127.0.0.1, stdout and stderr into one log file."""

    def __init__(self, log: Path, env: dict[str, str], *, concurrency: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**env, "PORT": str(self.port), "WEB_CONCURRENCY": str(concurrency)}
        command = procfile_command("web").replace("0.0.0.0", "127.0.0.1")
        self.output = log.open("w")
        # The server's executable from this virtualenv, as `make` puts it on PATH.
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        self.process = subprocess.Popen(
            ["bash", "-c", "exec " + command],  # as a Procfile runner does
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
