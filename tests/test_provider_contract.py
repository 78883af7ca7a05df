"""The clients against the providers' documentation: the request examples of the
provider pages (docs/providers.md, "Sources"), their sample responses, the ZEGO
signature test vector and the UserSig algorithm (docs/providers.md, "UserSig", "ZEGO server API").

Wire checks use a real HTTP server on 127.0.0.1 (tests/recording_server.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import ssl
import subprocess
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from messaging.providers import base, tencent, zego
from messaging.providers.base import Credentials, Outcome, http_client
from messaging.services.sending import build_request
from tests.factories import make_app
from tests.recording_server import recording_server

pytestmark = pytest.mark.django_db

DOC_KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"


@pytest.fixture
def server():
    yield from recording_server()


def tencent_creds(base_url: str = "http://127.0.0.1:9", **kw) -> Credentials:
    values = {
        "provider": "tencent",
        "app_id": 88888888,
        "identifier": "admin",
        "secret": "contract-secret-key",
        "base_url": base_url,
    }
    values.update(kw)
    return Credentials(**values)


def zego_creds(base_url: str = "http://127.0.0.1:9", **kw) -> Credentials:
    values = {
        "provider": "zego",
        "app_id": 12345,
        "identifier": "liveadmin",
        "secret": "9193cc662a4c0ec135ec71fb57194b38",
        "base_url": base_url,
    }
    values.update(kw)
    return Credentials(**values)


# --- UserSig, verified the way Tencent's Go/PHP libraries do (docs/providers.md) ----------


def decode_usersig(sig: str) -> dict:
    raw = sig.replace("_", "=").replace("-", "/").replace("*", "+")
    return json.loads(zlib.decompress(base64.b64decode(raw)))


def hmac_sig(key: str, identifier: str, sdkappid: int, now: int, expire: int) -> str:
    content = (
        f"TLS.identifier:{identifier}\nTLS.sdkappid:{sdkappid}\n"
        f"TLS.time:{now}\nTLS.expire:{expire}\n"
    )
    digest = hmac.new(key.encode(), content.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_it_computes_the_documented_usersig_hmac_vector():
    assert (
        hmac_sig(DOC_KEY, "xiaojun", 1400000000, 1700000000, 86400)
        == "SNF4FmVCPucoXsBOpbVF3fFCf57JPm0ezZ1jeVILlVc="
    )


def test_it_generates_a_usersig_that_decodes_and_verifies():
    creds = tencent_creds(app_id=1400000000, identifier="xiaojun", secret=DOC_KEY)
    before = int(time.time())
    fields = decode_usersig(tencent.usersig(creds, refresh=True))
    assert fields["TLS.ver"] == "2.0"
    assert fields["TLS.identifier"] == "xiaojun"
    assert fields["TLS.sdkappid"] == 1400000000
    assert fields["TLS.expire"] == tencent.USERSIG_EXPIRE_SECONDS
    assert before <= fields["TLS.time"] <= int(time.time())
    assert fields["TLS.sig"] == hmac_sig(
        DOC_KEY, "xiaojun", 1400000000, fields["TLS.time"], fields["TLS.expire"]
    )
    # A sig made with another key does not verify.
    assert fields["TLS.sig"] != hmac_sig(
        "other-key", "xiaojun", 1400000000, fields["TLS.time"], fields["TLS.expire"]
    )


def test_it_caches_the_usersig_per_app_identifier_and_key():
    creds = tencent_creds(app_id=1400000555, secret="first-key")
    first = tencent.usersig(creds)
    assert tencent.usersig(creds) is first
    rotated = tencent.usersig(tencent_creds(app_id=1400000555, secret="second-key"))
    assert decode_usersig(rotated)["TLS.sig"] != decode_usersig(first)["TLS.sig"]
    other_admin = tencent.usersig(
        tencent_creds(app_id=1400000555, secret="first-key", identifier="ops")
    )
    assert decode_usersig(other_admin)["TLS.identifier"] == "ops"
    assert tencent.usersig(creds) is first


# --- request bodies (the pages' sample request packets) ----------------------------------


def test_it_builds_the_documented_text_body():
    app = make_app()
    body = build_request(
        app,
        "text",
        {
            "room_id": "room1",
            "sender": "user1",
            "text": "msg",
            "extension_info": '{"data":1,"value":2}',
        },
    )
    assert body == {
        "RoomId": "room1",
        "Sender_Account": "user1",
        "TextContent": "msg",
        "ExtensionInfo": '{"data":1,"value":2}',
    }
    assert build_request(
        app, "text", {"room_id": "room1", "sender": "user1", "text": "msg"}
    ) == {"RoomId": "room1", "Sender_Account": "user1", "TextContent": "msg"}


def test_it_builds_the_documented_custom_body():
    app = make_app()
    fields = {
        "room_id": "room1",
        "sender": "user1",
        "business_id": "xxxxx",
        "data": "zzzzzzz",
    }
    assert build_request(app, "custom", fields) == {
        "RoomId": "room1",
        "Sender_Account": "user1",
        "BusinessId": "xxxxx",
        "Data": "zzzzzzz",
    }
    assert build_request(app, "custom", {**fields, "sender": ""}) == {
        "RoomId": "room1",
        "BusinessId": "xxxxx",
        "Data": "zzzzzzz",
    }


def test_it_builds_the_documented_broadcast_body():
    app = make_app()
    body = build_request(
        app,
        "broadcast",
        {
            "from_account": "test",
            "custom_data": '{ "type":1, "content":"hello world"}',
            "cloud_custom_data": "your cloud custom data",
            "random": 8912345,
        },
    )
    assert body == {
        "From_Account": "test",
        "Random": 8912345,
        "MsgBody": [
            {
                "MsgType": "TIMCustomElem",
                "MsgContent": {"Data": '{ "type":1, "content":"hello world"}'},
            }
        ],
        "CloudCustomData": "your cloud custom data",
    }
    text = build_request(app, "broadcast", {"text": "hello"})
    assert set(text) == {"Random", "MsgBody"}
    assert 0 <= text["Random"] <= 4294967295
    assert text["MsgBody"] == [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello"}}
    ]


def test_it_builds_the_documented_zego_parameters():
    app = make_app(provider="zego", identifier="liveadmin")
    params = build_request(
        app,
        "command",
        {
            "room_id": "123321",
            "from_user": "123",
            "to_users": ["123", "456"],
            "content": "推送自定义信息-新接口",
        },
    )
    assert params == {
        "RoomId": "123321",
        "FromUserId": "123",
        "ToUserId[]": ["123", "456"],
        "MessageContent": "推送自定义信息-新接口",
    }
    # No recipients: the whole room; no sender: the app's default sender.
    assert build_request(app, "command", {"room_id": "r", "content": "c"}) == {
        "RoomId": "r",
        "FromUserId": "liveadmin",
        "MessageContent": "c",
    }


# --- sample responses ----------------------------------------------------------------------


TEXT_SAMPLE = {
    "ErrorCode": 0,
    "ErrorInfo": "",
    "ActionStatus": "OK",
    "RequestId": "Id-ec3xxxxxxxxxxxxxxxxxxxxxxxxed-O-Seq-2433650",
    "Response": {"MsgTime": 1750074420, "MsgSeq": 25, "MsgDropReason": "MsgFreqCtrl"},
}
CUSTOM_SAMPLE = {
    "ErrorCode": 0,
    "ErrorInfo": "",
    "ActionStatus": "OK",
    "RequestId": "Id-b6454678e8a647ffa476ec1fee1263d1-O-Seq-2433991",
    "Response": {"MsgTime": 1750074537, "MsgSeq": 26, "MsgDropReason": "MsgFreqCtrl"},
}
BROADCAST_SAMPLE = {
    "ActionStatus": "OK",
    "ErrorInfo": "",
    "ErrorCode": 0,
    "MsgSeq": 1283,
}
ZEGO_SAMPLE = {"Code": 0, "Message": "success", "RequestId": "3005402395393320157"}


def test_it_reads_the_text_sample_response_as_dropped():
    result = tencent.parse_response(TEXT_SAMPLE, latency_ms=12)
    assert result.outcome == Outcome.DROPPED
    assert result.ok is False
    assert (result.error_code, result.action_status) == (0, "OK")
    assert result.request_id == "Id-ec3xxxxxxxxxxxxxxxxxxxxxxxxed-O-Seq-2433650"
    assert (result.msg_seq, result.msg_time) == (25, 1750074420)
    assert result.drop_reason == "MsgFreqCtrl"
    assert "40 messages per second" in result.explanation
    assert result.latency_ms == 12
    assert result.response_body == TEXT_SAMPLE


def test_it_reads_the_custom_sample_response_and_a_clean_one():
    dropped = tencent.parse_response(CUSTOM_SAMPLE)
    assert dropped.outcome == Outcome.DROPPED
    assert (dropped.msg_seq, dropped.msg_time) == (26, 1750074537)
    clean = {
        **CUSTOM_SAMPLE,
        "Response": {**CUSTOM_SAMPLE["Response"], "MsgDropReason": ""},
    }
    result = tencent.parse_response(clean)
    assert result.ok is True
    assert result.outcome == Outcome.OK
    assert (result.msg_seq, result.drop_reason, result.retryable) == (26, "", False)
    assert result.request_id == "Id-b6454678e8a647ffa476ec1fee1263d1-O-Seq-2433991"


def test_it_reads_the_broadcast_sample_response():
    result = tencent.parse_response(BROADCAST_SAMPLE)
    assert result.ok is True
    assert (result.msg_seq, result.msg_time, result.request_id) == (1283, None, "")


@pytest.mark.parametrize(
    ("answer", "retryable", "words"),
    [
        (
            {
                "ActionStatus": "FAIL",
                "ErrorCode": 100004,
                "ErrorInfo": "room not exist",
                "RequestId": "Id-1",
            },
            False,
            "room does not exist",
        ),
        (
            {
                "ActionStatus": "FAIL",
                "ErrorCode": 100602,
                "ErrorInfo": "freq",
                "RequestId": "Id-2",
            },
            True,
            "frequency",
        ),
        (
            {"ActionStatus": "FAIL", "ErrorCode": 10023, "ErrorInfo": "freq limit"},
            True,
            "frequency",
        ),
        (
            {
                "ActionStatus": "FAIL",
                "ErrorCode": 70009,
                "ErrorInfo": "sig verify failed",
            },
            False,
            "another SDKAppID",
        ),
    ],
)
def test_it_reads_error_answers(answer, retryable, words):
    result = tencent.parse_response(answer)
    assert result.outcome == Outcome.FAILED
    assert result.error_code == answer["ErrorCode"]
    assert result.error_info == answer["ErrorInfo"]
    assert result.request_id == answer.get("RequestId", "")
    assert result.retryable is retryable
    assert words in result.explanation


def test_it_reads_the_zego_sample_response_and_errors():
    result = zego.parse_response(ZEGO_SAMPLE)
    assert result.ok is True
    assert (result.error_code, result.request_id) == (0, "3005402395393320157")
    failed = zego.parse_response(
        {"Code": 50012, "Message": "too long", "RequestId": "9"}
    )
    assert (failed.outcome, failed.retryable) == (Outcome.FAILED, False)
    assert failed.explanation == "The message content is too long: at most 1024 bytes."
    offline = zego.parse_response(
        {**ZEGO_SAMPLE, "Data": {"FailUsers": [{"Uid": "456", "Code": 50003}]}},
        recipients=["456"],
    )
    assert offline.outcome == Outcome.DROPPED
    assert offline.drop_reason == "FailUsers:456=50003"
    partly = zego.parse_response(
        {**ZEGO_SAMPLE, "Data": {"FailUsers": [{"Uid": "456", "Code": 50003}]}},
        recipients=["123", "456"],
    )
    assert partly.ok is True
    assert "456=50003" in partly.error_info


# --- ZEGO signature (the doc test vector, docs/providers.md) -------------------------------------


def test_it_signs_zego_requests_like_the_documentation():
    assert (
        zego.signature(
            12345, "4fd24687296dd9f3", "9193cc662a4c0ec135ec71fb57194b38", 1615186943
        )
        == "43e5cfcca828314675f91b001390566a"
    )
    query = zego.signed_query(
        zego_creds(),
        {
            "RoomId": "r",
            "FromUserId": "u",
            "ToUserId[]": ["a", "b"],
            "MessageContent": "m",
        },
        nonce="4fd24687296dd9f3",
        timestamp=1615186943,
    )
    assert query == [
        ("Action", "SendCustomCommand"),
        ("RoomId", "r"),
        ("FromUserId", "u"),
        ("ToUserId[]", "a"),
        ("ToUserId[]", "b"),
        ("MessageContent", "m"),
        ("AppId", "12345"),
        ("SignatureNonce", "4fd24687296dd9f3"),
        ("Timestamp", "1615186943"),
        ("Signature", "43e5cfcca828314675f91b001390566a"),
        ("SignatureVersion", "2.0"),
    ]


# --- on the wire ----------------------------------------------------------------------------


def test_it_posts_the_text_body_with_the_five_query_parameters(server):
    server.answer(TEXT_SAMPLE)
    server.answer(
        {**TEXT_SAMPLE, "Response": {"MsgTime": 1, "MsgSeq": 27, "MsgDropReason": ""}}
    )
    creds = tencent_creds(server.url + "/prefix/")
    body = {"RoomId": "room1", "Sender_Account": "user1", "TextContent": "héllo 你好"}
    first = tencent.send(creds, "text", body)
    second = tencent.send(creds, "text", body)
    assert first.outcome == Outcome.DROPPED and second.ok
    assert second.msg_seq == 27
    one, two = server.received
    assert (one.method, one.path) == (
        "POST",
        "/prefix/v4/live_engine_http_srv/send_text_msg",
    )
    assert [name for name, _ in one.query] == [
        "sdkappid",
        "identifier",
        "usersig",
        "random",
        "contenttype",
    ]
    assert one.param("sdkappid") == "88888888"
    assert one.param("identifier") == "admin"
    assert one.param("contenttype") == "json"
    assert 0 <= int(one.param("random")) <= 4294967295
    assert one.param("random") != two.param("random")
    # The same cached UserSig on both requests, made for the admin of this app.
    assert one.param("usersig") == two.param("usersig")
    fields = decode_usersig(one.param("usersig"))
    assert (fields["TLS.identifier"], fields["TLS.sdkappid"]) == ("admin", 88888888)
    assert one.headers["content-type"].startswith("application/json")
    assert one.json() == body
    assert "héllo 你好".encode() in one.body


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("custom", "/v4/live_engine_http_srv/send_custom_msg"),
        ("broadcast", "/v4/group_open_http_svc/send_broadcast_msg"),
    ],
)
def test_it_posts_custom_and_broadcast_to_their_paths(server, kind, path):
    server.answer(BROADCAST_SAMPLE)
    body = {"RoomId": "room1", "BusinessId": "b", "Data": "d"}
    result = tencent.send(tencent_creds(server.url), kind, body)
    assert result.ok and result.msg_seq == 1283
    assert server.received[0].path == path
    assert server.received[0].json() == body


def test_it_regenerates_an_expired_usersig_once(server):
    server.answer(
        {"ActionStatus": "FAIL", "ErrorCode": 70001, "ErrorInfo": "sig expired"}
    )
    server.answer(BROADCAST_SAMPLE)
    result = tencent.send(
        tencent_creds(server.url, app_id=1400000777), "broadcast", {"Random": 1}
    )
    assert result.ok
    assert len(server.received) == 2
    assert server.received[0].json() == server.received[1].json() == {"Random": 1}

    server.received.clear()
    for _ in range(3):
        server.answer(
            {"ActionStatus": "FAIL", "ErrorCode": 70001, "ErrorInfo": "sig expired"}
        )
    result = tencent.send(
        tencent_creds(server.url, app_id=1400000777), "broadcast", {"Random": 1}
    )
    assert len(server.received) == 2
    assert (result.outcome, result.error_code, result.retryable) == (
        Outcome.FAILED,
        70001,
        True,
    )


def test_it_classifies_http_failures(server):
    server.answer(b"<html>bad gateway</html>", status=502)
    server.answer(b"not found", status=404)
    server.answer(b"<html>ok?</html>", status=200)
    creds = tencent_creds(server.url)
    gateway = tencent.send(creds, "text", {})
    # A gateway error after the request went in: it may have been processed, so
    # its delivery is unknown and it is not repeated blindly.
    assert (gateway.outcome, gateway.http_status, gateway.retryable) == (
        Outcome.UNKNOWN,
        502,
        False,
    )
    missing = tencent.send(creds, "text", {})
    assert (missing.http_status, missing.retryable) == (404, False)
    assert "base URL" in missing.explanation
    garbled = tencent.send(creds, "text", {})
    assert (garbled.outcome, garbled.http_status, garbled.retryable) == (
        Outcome.UNKNOWN,
        200,
        False,
    )
    assert garbled.response_body == {"text": "<html>ok?</html>"}


def test_it_retries_only_what_surely_did_not_reach_the_provider(server):
    creds = tencent_creds(server.url)
    # Busy or unavailable: refused before processing, retried.
    server.answer(b"busy", status=503)
    busy = tencent.send(creds, "text", {})
    assert (busy.outcome, busy.http_status, busy.retryable) == (
        Outcome.FAILED,
        503,
        True,
    )
    # Nothing listens: the request never left, retried.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    refused = tencent.send(tencent_creds(closed), "text", {})
    assert (refused.outcome, refused.retryable) == (Outcome.FAILED, True)
    assert refused.error_info.startswith("ConnectError")


def test_it_marks_a_read_timeout_unknown(monkeypatch):
    # A server that accepts the request and never answers (the kernel accepts the
    # connection into the backlog): the message may have been delivered, so it is
    # not retried (text has no de-duplication key). A real read timeout, shortened.
    monkeypatch.setattr(base, "TIMEOUT", httpx.Timeout(3.0, read=0.5))
    monkeypatch.setattr(base, "_client", None)  # a client built with that timeout
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        result = tencent.send(tencent_creds(url), "text", {})
    assert (result.outcome, result.retryable) == (Outcome.UNKNOWN, False)
    assert result.error_info.startswith("ReadTimeout")
    assert "not sent again by itself" in result.explanation


def test_it_gets_zego_send_custom_command_with_a_fresh_signature(server):
    server.answer(ZEGO_SAMPLE)
    server.answer(ZEGO_SAMPLE)
    creds = zego_creds(server.url + "/zego")
    params = {
        "RoomId": "123321",
        "FromUserId": "123",
        "ToUserId[]": ["123", "456"],
        "MessageContent": "推送自定义信息-新接口",
    }
    before = int(time.time())
    result = zego.send(creds, "command", params)
    zego.send(creds, "command", params)
    assert result.ok and result.request_id == "3005402395393320157"
    first, second = server.received
    assert (first.method, first.path, first.body) == ("GET", "/zego/", b"")
    # The doc example's encoding of the content.
    assert (
        "MessageContent=%E6%8E%A8%E9%80%81%E8%87%AA%E5%AE%9A%E4%B9%89%E4%BF%A1%E6%81%AF-%E6%96%B0%E6%8E%A5%E5%8F%A3"
        in first.raw_query
    )
    assert [k for k, _ in first.query] == [
        "Action",
        "RoomId",
        "FromUserId",
        "ToUserId[]",
        "ToUserId[]",
        "MessageContent",
        "AppId",
        "SignatureNonce",
        "Timestamp",
        "Signature",
        "SignatureVersion",
    ]
    assert [v for k, v in first.query if k == "ToUserId[]"] == ["123", "456"]
    nonce, timestamp = first.param("SignatureNonce"), int(first.param("Timestamp"))
    assert len(nonce) == 16 and int(nonce, 16) >= 0
    assert before <= timestamp <= int(time.time())
    expected = hashlib.md5(
        f"12345{nonce}9193cc662a4c0ec135ec71fb57194b38{timestamp}".encode()
    ).hexdigest()
    assert first.param("Signature") == expected
    assert first.param("SignatureVersion") == "2.0"
    assert first.param("AppId") == "12345"
    assert second.param("SignatureNonce") != nonce


def test_it_never_logs_the_usersig_or_the_signature(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.answer({"ActionStatus": "FAIL", "ErrorCode": 70001, "ErrorInfo": "expired"})
    server.answer(TEXT_SAMPLE)
    server.answer(ZEGO_SAMPLE)
    tencent.send(tencent_creds(server.url), "text", {"RoomId": "r"})
    zego.send(
        zego_creds(server.url),
        "command",
        {"RoomId": "r", "FromUserId": "u", "MessageContent": "m"},
    )
    secrets_sent = [
        server.received[0].param("usersig"),
        server.received[1].param("usersig"),
    ]
    secrets_sent += [server.received[2].param("Signature"), "contract-secret-key"]
    secrets_sent.append("9193cc662a4c0ec135ec71fb57194b38")
    assert caplog.records
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets_sent:
        assert secret not in logged


def test_it_shares_one_pooled_client_with_explicit_timeouts():
    client = http_client()
    assert http_client() is client
    assert client.timeout.connect == 3.0
    # Tencent's backend gives up after 3 s and asks callers to wait longer.
    assert client.timeout.read > 3.0
    assert client.follow_redirects is False


# --- the keep-alive pool ----------------------------------------------------------------------


class _KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; counts connections; ``close_after`` closes each
    connection after its answer without saying so (as an idle timeout does)."""

    protocol_version = "HTTP/1.1"
    close_after = False
    connections: list[tuple[str, int]] = []

    def setup(self) -> None:
        super().setup()
        type(self).connections.append(self.client_address)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        raw = json.dumps(TEXT_SAMPLE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        self.close_connection = self.close_after

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def keepalive_server():
    def start(close_after: bool) -> tuple[str, list]:
        handler = type(
            "Handler",
            (_KeepAliveHandler,),
            {"close_after": close_after, "connections": []},
        )
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}", handler.connections

    servers: list[ThreadingHTTPServer] = []
    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_it_sends_many_requests_over_one_kept_alive_connection(keepalive_server):
    url, connections = keepalive_server(close_after=False)
    results = [tencent.send(tencent_creds(url), "text", {}) for _ in range(5)]
    assert [r.outcome for r in results] == [Outcome.DROPPED] * 5
    assert len(connections) == 1


def test_it_drops_an_idle_connection_the_server_closed(keepalive_server):
    # The server closes each connection after its answer: the next request must not
    # go out on the closed one (that would end unknown), but on a new connection.
    url, connections = keepalive_server(close_after=True)
    first = tencent.send(tencent_creds(url), "text", {})
    await_closed = time.monotonic() + 5
    while time.monotonic() < await_closed and len(connections) < 1:
        time.sleep(0.01)
    time.sleep(0.05)  # the server's close reaches the idle socket
    second = tencent.send(tencent_creds(url), "text", {})
    assert (first.outcome, second.outcome) == (Outcome.DROPPED, Outcome.DROPPED)
    assert len(connections) == 2


@pytest.mark.parametrize(
    "params",
    [
        {"sdkappid": "1400000001", "usersig": "eJw*rVa-_+/=", "random": "42"},
        [("RoomId", "r 1&x=y"), ("ToUserId[]", ["123", "456"]), ("M", "推送-新接口")],
        (("a", "~.-_!*'()"), ("b", ""), ("c", 7)),
        {"IsTest": True, "n": None, "ids": ("1", "2")},
    ],
)
def test_it_writes_the_query_as_httpx_does(params):
    assert base._query(params) == str(httpx.QueryParams(params))


def test_it_leaves_requests_to_httpx_when_a_proxy_is_set(monkeypatch):
    base._proxied.cache_clear()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    try:
        assert base.keepalive_pool() is None
    finally:
        monkeypatch.delenv("HTTPS_PROXY")
        base._proxied.cache_clear()
    assert base.keepalive_pool() is not None


@pytest.fixture
def https_server(tmp_path, keepalive_server):
    """The keep-alive test server behind TLS, with a certificate for 127.0.0.1 made by
    the openssl command; yields (https URL, connections, the certificate's path)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    handler = type("Handler", (_KeepAliveHandler,), {"connections": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", handler.connections, cert
    httpd.shutdown()
    httpd.server_close()


def test_it_sends_over_tls_with_the_certificate_checked(https_server, monkeypatch):
    # The providers' APIs are HTTPS: the pool verifies the server's certificate (httpx's
    # TLS context, which trusts SSL_CERT_FILE here) and keeps the TLS connection alive.
    url, connections, cert = https_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    pool = base.KeepAlivePool()
    try:
        answers = [pool.request("POST", f"{url}/v4/x", content=b"{}") for _ in range(3)]
    finally:
        pool.close()
    assert [a.status_code for a in answers] == [200] * 3
    assert answers[0].json() == TEXT_SAMPLE
    assert len(connections) == 1


def test_it_refuses_a_certificate_it_does_not_trust(https_server, monkeypatch):
    url, connections, _ = https_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setattr(base, "CONNECT_RETRIES", 0)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        base.KeepAlivePool().request("POST", f"{url}/v4/x", content=b"{}")
