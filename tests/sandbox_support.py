"""Helpers for the sandbox tests: UserSigs, signed URLs, a tiny webhook receiver."""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import TLSSigAPIv2

from messaging.sandbox.usersig import compute_sig


def gen_usersig(app_id: int, key: str, identifier: str, expire: int = 86400) -> str:
    """What a client does: the official PyPI library."""
    return TLSSigAPIv2.TLSSigAPIv2(app_id, key).gen_sig(identifier, expire)


def build_usersig(
    app_id: int, key: str, identifier: str, *, issued: int, expire: int
) -> str:
    """The documented algorithm with a chosen issue time (for expired sigs)."""
    doc = {
        "TLS.ver": "2.0",
        "TLS.identifier": identifier,
        "TLS.sdkappid": app_id,
        "TLS.expire": expire,
        "TLS.time": issued,
        "TLS.sig": compute_sig(key, identifier, app_id, issued, expire),
    }
    raw = base64.b64encode(zlib.compress(json.dumps(doc).encode())).decode()
    return raw.replace("+", "*").replace("/", "-").replace("=", "_")


def tencent_url(
    base: str,
    service: str,
    command: str,
    app: Any,
    *,
    usersig: str | None = None,
    identifier: str | None = None,
    **overrides: Any,
) -> str:
    identifier = app.identifier if identifier is None else identifier
    query = {
        "sdkappid": str(app.app_id),
        "identifier": identifier,
        "usersig": gen_usersig(app.app_id, app.secret_key, identifier)
        if usersig is None
        else usersig,
        "random": "99999999",
        "contenttype": "json",
    }
    for name, value in overrides.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return f"{base}/sandbox/v4/{service}/{command}?{urlencode(query)}"


def zego_query(
    app: Any, *, secret: str | None = None, timestamp: int | None = None, **params: Any
) -> list:
    nonce = "4fd24687296dd9f3"
    ts = int(time.time()) if timestamp is None else timestamp
    secret = app.secret_key if secret is None else secret
    sig = hashlib.md5(f"{app.app_id}{nonce}{secret}{ts}".encode()).hexdigest()
    query = [
        ("Action", "SendCustomCommand"),
        ("AppId", str(app.app_id)),
        ("SignatureNonce", nonce),
        ("Timestamp", str(ts)),
        ("Signature", sig),
        ("SignatureVersion", "2.0"),
    ]
    drop = {k for k, v in params.items() if v is None}
    query = [(k, v) for k, v in query if k not in drop and k not in params]
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, list):
            query += [(name, v) for v in value]
        else:
            query.append((name, value))
    return query


@dataclass
class Hit:
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1:<free port> that records each POST and answers
    with ``answer(hit) -> (status, body bytes)``; ``hold`` makes before-send calls
    wait until the test releases it (to provoke the sandbox's timeout)."""

    answer: Callable[[Hit], tuple[int, bytes]] = lambda hit: (
        200,
        b'{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}',
    )
    hits: queue.Queue = field(default_factory=queue.Queue)
    hold: threading.Event | None = None

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                hit = Hit(parts.path, query, json.loads(raw) if raw else None)
                receiver.hits.put(hit)
                if (
                    receiver.hold is not None
                    and query.get("CallbackCommand") == "Group.CallbackBeforeSendMsg"
                ):
                    receiver.hold.wait(10)
                status, body = receiver.answer(hit)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the sandbox gave up waiting (timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.02,), daemon=True
        )
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def next(self, command: str, timeout: float = 5) -> Hit:
        """The next recorded call of ``command`` (waits for it to arrive)."""
        deadline = time.monotonic() + timeout
        while True:
            hit = self.hits.get(timeout=max(0.01, deadline - time.monotonic()))
            if hit.query.get("CallbackCommand") == command:
                return hit


def answer_json(payload: dict, status: int = 200) -> Callable[[Hit], tuple[int, bytes]]:
    body = json.dumps(payload).encode()
    return lambda hit: (status, body)
