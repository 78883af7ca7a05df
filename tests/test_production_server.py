"""The Procfile's web server, as production runs it: slow clients cannot hold its workers,
chunked bodies are read up to the cap, and the same server serves the dashboard."""

from __future__ import annotations

import http.client
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.factories import PASSWORD
from tests.server_support import (
    env_for,
    manage,
    post_json,
    procfile_command,
    procfile_web,
    shared_database,
    webhook_url,
)
from tests.webhook_support import text_body

pytestmark = pytest.mark.django_db(transaction=True)

APP_ID = 1400555001


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    env = env_for(shared_database(tmp_path), redis="", settings_module="tests.settings")
    manage(
        [
            "addapp",
            "prod",
            "--provider",
            "tencent",
            "--app-id",
            str(APP_ID),
            "--region",
            "singapore",
            "--identifier",
            "administrator",
        ],
        env | {"LIVEADMIN_SECRET": "production-secret-0123456789"},
    )
    manage(["blocklist", "add", "--all-apps", "--term", "casino"], env)
    with procfile_web(env, workers=2) as port:
        yield port, env


def body(text: str) -> bytes:
    return json.dumps(text_body(text)).encode()


def test_the_procfile_names_web_worker_and_beat():
    assert "$PORT" in procfile_command("web")
    assert "WEB_CONCURRENCY" in procfile_command("web")
    assert procfile_command("worker").startswith("celery -A liveadmin worker ")
    assert procfile_command("beat") == "celery -A liveadmin beat -l info"


def test_the_procfile_web_server(server):
    """One server start (a few seconds on a busy machine) for the five behaviours."""
    port, env = server
    _two_stalled_uploads_do_not_hold_the_workers(port)
    _a_chunked_body_is_read_up_to_the_cap(port)
    _the_same_server_serves_the_dashboard(port)
    _the_dashboard_signs_in_and_streams_an_export(port, env)
    _a_change_made_elsewhere_is_answered_once_built_aside(port, env)


def _two_stalled_uploads_do_not_hold_the_workers(server: int) -> None:
    url = webhook_url(server, APP_ID)
    assert post_json(url, body("warm up"))[1]["ErrorCode"] == 0
    stalled = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", server))
        s.sendall(
            b"POST /webhooks/tencent?SdkAppid=1400555001&CallbackCommand="
            b"Group.CallbackBeforeSendMsg HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        stalled.append(s)
    try:
        timings = []
        for text in ("casino night", "hello", "CASINO", "again"):
            started = time.perf_counter()
            status, answer = post_json(url, body(text))
            timings.append(time.perf_counter() - started)
            assert status == 200
            assert answer["ErrorCode"] == (1 if "casino" in text.lower() else 0)
        assert max(timings) < 0.2, timings
    finally:
        for s in stalled:
            s.close()


def _chunked(port: int, payload: bytes) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    pieces = [payload[i : i + 4096] for i in range(0, len(payload), 4096)]
    conn.request(
        "POST",
        webhook_url(port, APP_ID).split(str(port), 1)[1],
        body=iter(pieces),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = conn.getresponse()
    result = response.status, json.loads(response.read())
    conn.close()
    return result


def _a_chunked_body_is_read_up_to_the_cap(server: int) -> None:
    assert _chunked(server, body("casino tonight")) == (
        200,
        {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 1},
    )
    near_cap = body("casino " + "x" * (1024 * 1024 - 400))
    assert len(near_cap) <= 1024 * 1024
    assert _chunked(server, near_cap)[1]["ErrorCode"] == 1
    over = body("x" * (1024 * 1024 + 10))
    assert _chunked(server, over) == (413, {"error": "body over 1 MB"})


def _the_same_server_serves_the_dashboard(server: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    # As behind the TLS-terminating proxy production runs behind (no HTTPS redirect).
    conn.request("GET", "/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    response = conn.getresponse()
    page = response.read().decode()
    conn.close()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/html")
    assert 'name="password"' in page


def _request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    result = response.status, response.headers, response.read()
    conn.close()
    return result


def _the_dashboard_signs_in_and_streams_an_export(
    server: int, env: dict[str, str]
) -> None:
    """Through the RSGI entry point's adapter (liveadmin/rsgi_adapter.py): a form POST
    with its cookies, several Set-Cookie headers, a redirect, a streamed CSV, and a
    stalled upload to a dashboard page that holds no worker."""
    manage(
        [
            "shell",
            "-c",
            "from tests.factories import make_user; from liveadmin.roles import Role; "
            "make_user('prod-auditor', role=Role.AUDITOR)",
        ],
        env,
    )
    status, headers, page = _request(server, "GET", "/accounts/login/")
    assert status == 200
    cookies = {
        c.split("=", 1)[0]: c.split(";", 1)[0] for c in headers.get_all("Set-Cookie")
    }
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token and "csrftoken" in cookies
    form = urlencode(
        {
            "csrfmiddlewaretoken": token.group(1).decode(),
            "username": "prod-auditor",
            "password": PASSWORD,
        }
    ).encode()
    stalled = socket.create_connection(("127.0.0.1", server))
    stalled.sendall(
        b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\nu"
    )
    try:
        started = time.perf_counter()
        status, headers, _ = _request(
            server,
            "POST",
            "/accounts/login/",
            form,
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": cookies["csrftoken"],
                "Referer": f"http://127.0.0.1:{server}/accounts/login/",
            },
        )
        assert time.perf_counter() - started < 2
    finally:
        stalled.close()
    assert status == 302, headers
    session = [c.split(";", 1)[0] for c in headers.get_all("Set-Cookie")]
    assert any(c.startswith("sessionid=") for c in session), session
    status, headers, csv = _request(
        server, "GET", "/audit/export.csv", headers={"Cookie": "; ".join(session)}
    )
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert headers.get("Transfer-Encoding") == "chunked"  # streamed, not buffered
    assert csv.decode().splitlines()[0].startswith("id,")


def _a_change_made_elsewhere_is_answered_once_built_aside(
    server: int, env: dict[str, str]
) -> None:
    """A blocklist change from another process: each worker builds the new rules (and the
    moderation state that comes with them) aside, then answers from them on its event
    loop, never from the database there (that raised, and the fail policy answered)."""
    url = webhook_url(server, APP_ID)
    manage(["blocklist", "add", "--all-apps", "--term", "jackpot"], env)
    deadline = time.monotonic() + 20
    caught = 0
    while caught < 6:  # several in a row: both workers have the new rules
        status, answer = post_json(url, body("jackpot tonight"))
        assert status == 200
        caught = caught + 1 if answer["ErrorCode"] == 1 else 0
        assert time.monotonic() < deadline, "the change was not picked up"
        time.sleep(0.05)  # polling another process's rebuild
    for text, code in (("casino night", 1), ("hello", 0), ("JACKPOT", 1)):
        assert post_json(url, body(text))[1]["ErrorCode"] == code, text
