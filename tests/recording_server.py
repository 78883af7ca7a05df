"""A real HTTP server on 127.0.0.1 that records what it receives and answers with
canned responses, to check exactly what the clients put on the wire (not a mock:
the clients talk to it over TCP like to any provider)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Received:
    method: str
    path: str
    raw_query: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str) -> str:
        values = [v for k, v in self.query if k == name]
        assert len(values) == 1, (name, self.query)
        return values[0]

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class RecordingServer:
    answers: list[tuple[int, bytes]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    # Answer given when no canned answer is queued.
    default: tuple[int, bytes] = (
        200,
        b'{"ErrorCode": 0, "ActionStatus": "OK", "ErrorInfo": ""}',
    )

    def answer(self, payload: object, status: int = 200) -> None:
        self.answers.append((status, _raw(payload)))

    def always(self, payload: object, status: int = 200) -> None:
        self.default = (status, _raw(payload))


def _raw(payload: object) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def _handler(server_state: RecordingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            server_state.received.append(
                Received(
                    method=self.command,
                    path=parts.path,
                    raw_query=parts.query,
                    query=parse_qsl(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
            )
            status, raw = (
                server_state.answers.pop(0)
                if server_state.answers
                else server_state.default
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def recording_server() -> Iterator[RecordingServer]:
    state = RecordingServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
