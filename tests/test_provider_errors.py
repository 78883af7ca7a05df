"""Every documented error code is classified (retryable or permanent) and explained.

The expected classes are written out here from the documentation (docs/providers.md,
"Tencent error codes" and "ZEGO return codes"), independently of the tables in the clients.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.test import override_settings
from TLSSigAPIv2 import TLSSigAPIv2

from messaging.models import ProviderApp
from messaging.providers import explain, tencent, zego
from messaging.providers.base import Credentials, Outcome, SendResult
from messaging.sandbox.models import SandboxApp
from messaging.sandbox.services import create_room, mute_member, register_app
from messaging.services.sending import credentials_for
from tests.factories import make_app, make_sandbox_app
from tests.recording_server import RecordingServer, recording_server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


TENCENT_RETRYABLE = [
    60007,  # REST API call frequency over limit
    60008,  # service timeout; retry
    60011,  # SDKAppID-level frequency limit
    60013,
    60014,
    60018,
    60019,
    70001,  # expired UserSig (after one regeneration)
    70050,
    70114,
    70169,
    70202,
    70500,
    80003,
    10002,  # broadcast: internal error, try again
    10006,
    10023,  # broadcast: message frequency limit
    100001,  # live_engine: internal error, try again
    100602,  # live_engine: message frequency limit
]
TENCENT_PERMANENT = [
    60002,
    60003,
    60004,
    60005,
    60006,
    60009,
    60010,
    60012,
    60015,
    60016,
    60017,
    60020,
    60021,
    70002,
    70003,
    70005,
    70009,
    70013,
    70014,
    70016,
    70020,
    70051,
    70107,
    70206,
    70398,
    70402,
    70403,
    80001,
    80002,
    80004,
    90002,
    90007,
    90010,
    90055,
    93000,
    10003,
    10004,
    10005,
    10007,
    10010,
    10015,
    10016,
    10017,
    10018,
    10030,
    10031,
    10032,
    10033,
    10035,
    10041,
    100002,
    100004,
    100006,
    100601,
    100603,
]
ZEGO_RETRYABLE = [
    1,
    7,
    121,
    122,
    151,
    206,
    207,
    5201,
    5202,
    # Top-level 50003 is "failed to get online user count" (issue 8; docs/providers.md).
    50003,
    50004,
    50013,
    100000011,
    100000015,
]
ZEGO_PERMANENT = [
    2,
    3,
    8,
    9,
    104,
    105,
    1008,
    5018,
    5024,
    50001,
    50002,
    50011,
    50012,
    50123,
    50124,
    *[100000000 + n for n in range(18) if n not in (11, 15)],
]


@pytest.mark.parametrize("code", TENCENT_RETRYABLE)
def test_it_classifies_retryable_tencent_codes(code):
    info = tencent.classify(code)
    assert info.retryable is True
    assert info.retry_after and info.retry_after > 0
    assert code in tencent.CODES


@pytest.mark.parametrize("code", TENCENT_PERMANENT)
def test_it_classifies_permanent_tencent_codes(code):
    assert tencent.classify(code).retryable is False
    assert code in tencent.CODES


@pytest.mark.parametrize("code", ZEGO_RETRYABLE)
def test_it_classifies_retryable_zego_codes(code):
    assert zego.classify(code).retryable is True
    assert code in zego.CODES


@pytest.mark.parametrize("code", ZEGO_PERMANENT)
def test_it_classifies_permanent_zego_codes(code):
    assert zego.classify(code).retryable is False
    assert code in zego.CODES


def test_it_lists_no_code_it_was_not_asked_about():
    assert set(tencent.CODES) == set(TENCENT_RETRYABLE) | set(TENCENT_PERMANENT)
    assert set(zego.CODES) == set(ZEGO_RETRYABLE) | set(ZEGO_PERMANENT)


@pytest.mark.parametrize(
    ("provider", "code"),
    [("tencent", c) for c in TENCENT_RETRYABLE + TENCENT_PERMANENT]
    + [("zego", c) for c in ZEGO_RETRYABLE + ZEGO_PERMANENT],
)
def test_it_explains_every_documented_code(provider, code):
    text = explain(provider, code)
    assert text.endswith(".") or text.endswith(")")
    assert len(text) > 15
    assert f"with code {code}" not in text  # not the fallback for unknown codes


def test_it_explains_specific_codes_for_people():
    assert explain("tencent", 100004) == (
        "The room does not exist: it was never created or has been dissolved."
    )
    assert explain("tencent", 100601) == "The sender is muted in this room."
    assert (
        explain("tencent", 10016)
        == "The app's before-send webhook refused the message."
    )
    assert (
        explain("zego", 100000005) == "The signature is wrong: check the ServerSecret."
    )
    assert explain("zego", 50001).startswith("The room does not exist")
    assert explain("tencent", 0) == explain("zego", 0) == "Sent."
    assert explain("tencent", None) == ""
    assert explain("nowhere", 1) == ""


@pytest.mark.parametrize("code", [10100, 10150, 10200])
def test_it_treats_webhook_codes_as_permanent(code):
    info = tencent.classify(code)
    assert info.retryable is False
    assert info.explanation == (
        f"The app's before-send webhook refused the message (code {code})."
    )


def test_it_treats_unknown_codes_as_permanent():
    assert tencent.classify(99999).retryable is False
    assert (
        explain("tencent", 99999) == "The provider refused the request with code 99999."
    )
    assert zego.classify(424242).retryable is False
    assert explain("zego", 424242) == "ZEGO refused the request with code 424242."


# --- produced by the sandbox over real HTTP, read by the clients ----------------------------
#
# Each scenario makes the sandbox (served by live_server) answer one documented code,
# through the client where the client can send such a request, or with a hand-made
# request (urllib) where the client never would (its own validation stops it).


def _post(url: str, query: dict[str, str], body: bytes) -> dict:
    request = urllib.request.Request(
        f"{url}?{urllib.parse.urlencode(query)}",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def _get(url: str, query: list[tuple[str, str]]) -> dict:
    with urllib.request.urlopen(
        f"{url}?{urllib.parse.urlencode(query)}", timeout=10
    ) as response:
        return json.loads(response.read())


@pytest.fixture
def hook():
    """The app's before-send webhook: allows everything unless a test says otherwise."""
    for server in recording_server():
        server.always({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""})
        yield server


@dataclass
class Sandbox:
    site: str
    hook: RecordingServer
    app: ProviderApp
    sandbox_app: SandboxApp

    @property
    def creds(self) -> Credentials:
        return credentials_for(self.app)

    def tencent_url(self, path: str) -> str:
        return f"{self.site}/sandbox/{path}"

    def query(self, **changes: str) -> dict[str, str]:
        query = tencent.query_params(self.creds, tencent.usersig(self.creds))
        query.update(changes)
        return {k: v for k, v in query.items() if v is not None}


ALLOW = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}


def new_sandbox(site: str, hook: RecordingServer) -> Sandbox:
    """A fresh Tencent app mirrored into the sandbox (scenarios may change it)."""
    hook.always(ALLOW)
    app = make_app(base_url=site + "/sandbox")
    sandbox_app = make_sandbox_app(
        app, rooms=("room-1",), callback_url=hook.url + "/hook"
    )
    return Sandbox(site, hook, app, sandbox_app)


def new_zego_sandbox(site: str, hook: RecordingServer) -> Sandbox:
    app = make_app(provider="zego", base_url=site + "/sandbox/zego")
    sandbox_app = make_sandbox_app(app, rooms=("room-1",))
    return Sandbox(site, hook, app, sandbox_app)


@pytest.fixture
def sandbox(live_server, hook) -> Sandbox:
    return new_sandbox(live_server.url, hook)


@pytest.fixture
def zego_sandbox(live_server, hook) -> Sandbox:
    return new_zego_sandbox(live_server.url, hook)


TEXT_BODY = {"RoomId": "room-1", "Sender_Account": "host1", "TextContent": "hello"}
BROADCAST_BODY = {
    "Random": 1,
    "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "to all"}}],
}


def expired_usersig(sb: Sandbox) -> str:
    return TLSSigAPIv2(sb.app.app_id, sb.app.secret_key).gen_sig(sb.app.identifier, -10)


def _send(sb: Sandbox, kind: str, body: dict) -> SendResult:
    return tencent.send(sb.creds, kind, body)


def _raw(sb: Sandbox, path: str, body: bytes = b"{}", **query: str) -> SendResult:
    return tencent.parse_response(_post(sb.tencent_url(path), sb.query(**query), body))


TEXT_PATH = "v4/live_engine_http_srv/send_text_msg"
BROADCAST_PATH = "v4/group_open_http_svc/send_broadcast_msg"


def _muted(sb: Sandbox) -> SendResult:
    mute_member(sb.sandbox_app, "room-1", "host1", 600)
    return _send(sb, "text", TEXT_BODY)


def _not_live(sb: Sandbox) -> SendResult:
    create_room(sb.sandbox_app, "vod-room", live=False)
    return _send(sb, "text", {**TEXT_BODY, "RoomId": "vod-room"})


def _live_rate(sb: Sandbox) -> SendResult:
    with override_settings(SANDBOX_RATE_LIMITS={"live_engine": 1}):
        assert _send(sb, "text", TEXT_BODY).ok
        return _send(sb, "text", TEXT_BODY)


def _broadcast_rate(sb: Sandbox) -> SendResult:
    assert _send(sb, "broadcast", BROADCAST_BODY).ok
    return _send(sb, "broadcast", {**BROADCAST_BODY, "Random": 2})


def _broadcast_disabled(sb: Sandbox) -> SendResult:
    SandboxApp.objects.filter(pk=sb.sandbox_app.pk).update(broadcast_enabled=False)
    return _send(sb, "broadcast", BROADCAST_BODY)


def _wrong_key(sb: Sandbox) -> SendResult:
    register_app("tencent", sb.app.app_id, "another-key", admins=[sb.app.identifier])
    return _send(sb, "text", TEXT_BODY)


def _not_admin(sb: Sandbox) -> SendResult:
    register_app("tencent", sb.app.app_id, sb.app.secret_key, admins=["someone-else"])
    return _send(sb, "text", TEXT_BODY)


def _unknown_app(sb: Sandbox) -> SendResult:
    SandboxApp.objects.filter(pk=sb.sandbox_app.pk).delete()
    return _send(sb, "text", TEXT_BODY)


def _webhook(code: int, info: str = "") -> Callable[[Sandbox], SendResult]:
    def scenario(sb: Sandbox) -> SendResult:
        sb.hook.always({"ActionStatus": "OK", "ErrorCode": code, "ErrorInfo": info})
        return _send(sb, "text", TEXT_BODY)

    return scenario


def _webhook_down_fail_closed(sb: Sandbox) -> SendResult:
    SandboxApp.objects.filter(pk=sb.sandbox_app.pk).update(
        failure_policy="reject", callback_url=f"http://127.0.0.1:{closed_port()}/hook"
    )
    return _send(sb, "text", TEXT_BODY)


TENCENT_SCENARIOS: dict[str, tuple[int, Callable[..., SendResult]]] = {
    "unknown API": (60009, lambda sb: _raw(sb, "v4/live_engine_http_srv/send_nothing")),
    "random out of range": (60002, lambda sb: _raw(sb, TEXT_PATH, random="4294967296")),
    "contenttype not json": (60002, lambda sb: _raw(sb, TEXT_PATH, contenttype="xml")),
    "no sdkappid": (60012, lambda sb: _raw(sb, TEXT_PATH, sdkappid=None)),
    "bad sdkappid": (60006, lambda sb: _raw(sb, TEXT_PATH, sdkappid="abc")),
    "no identifier": (60004, lambda sb: _raw(sb, TEXT_PATH, identifier="")),
    "empty body": (60003, lambda sb: _raw(sb, TEXT_PATH, b"")),
    "body not JSON": (60003, lambda sb: _raw(sb, TEXT_PATH, b"{RoomId")),
    "account not a string": (
        60015,
        lambda sb: _send(sb, "text", {**TEXT_BODY, "Sender_Account": 7}),
    ),
    "identifier not admin": (60010, _not_admin),
    "unknown SDKAppID": (70020, _unknown_app),
    "empty usersig": (70002, lambda sb: _raw(sb, TEXT_PATH, usersig="")),
    "garbled usersig": (
        70003,
        lambda sb: _raw(sb, TEXT_PATH, usersig="bm90IGEgdXNlcnNpZw__"),
    ),
    "expired usersig": (
        70001,
        lambda sb: _raw(sb, TEXT_PATH, usersig=expired_usersig(sb)),
    ),
    "usersig of another identifier": (
        70013,
        lambda sb: _raw(
            sb,
            TEXT_PATH,
            usersig=TLSSigAPIv2(sb.app.app_id, sb.app.secret_key).gen_sig("other", 600),
        ),
    ),
    "usersig of another sdkappid": (
        70014,
        lambda sb: _raw(
            sb,
            TEXT_PATH,
            usersig=TLSSigAPIv2(1400999999, sb.app.secret_key).gen_sig(
                sb.app.identifier, 600
            ),
        ),
    ),
    "usersig made with another key": (70009, _wrong_key),
    "missing TextContent": (
        100002,
        lambda sb: _send(sb, "text", {"RoomId": "room-1", "Sender_Account": "host1"}),
    ),
    "ExtensionInfo not JSON": (
        100002,
        lambda sb: _send(sb, "text", {**TEXT_BODY, "ExtensionInfo": "{x"}),
    ),
    "missing BusinessId": (
        100002,
        lambda sb: _send(sb, "custom", {"RoomId": "room-1", "Data": "d"}),
    ),
    "room does not exist": (
        100004,
        lambda sb: _send(sb, "text", {**TEXT_BODY, "RoomId": "nowhere"}),
    ),
    "not a live room": (100006, _not_live),
    "sender muted": (100601, _muted),
    "API frequency": (100602, _live_rate),
    "text too long": (
        100603,
        lambda sb: _send(sb, "text", {**TEXT_BODY, "TextContent": "x" * 12289}),
    ),
    "custom data too long": (
        100603,
        lambda sb: _send(
            sb, "custom", {"RoomId": "room-1", "BusinessId": "b", "Data": "x" * 12289}
        ),
    ),
    "webhook forbids": (10016, _webhook(1)),
    "webhook forbids with its code": (10150, _webhook(10150, "spam")),
    "webhook down, fail closed": (80003, _webhook_down_fail_closed),
    "internal error (sandbox trigger)": (
        100001,
        lambda sb: _send(sb, "text", {**TEXT_BODY, "RoomId": "sandbox-fail-100001"}),
    ),
    "broadcast internal error (sandbox trigger)": (
        10002,
        lambda sb: _send(
            sb, "broadcast", {**BROADCAST_BODY, "From_Account": "sandbox-fail-10002"}
        ),
    ),
    "broadcast without Random": (
        10004,
        lambda sb: _send(sb, "broadcast", {"MsgBody": BROADCAST_BODY["MsgBody"]}),
    ),
    "broadcast bad MsgBody": (
        10004,
        lambda sb: _send(sb, "broadcast", {"Random": 1, "MsgBody": []}),
    ),
    "broadcast not enabled": (10007, _broadcast_disabled),
    "broadcast frequency": (10023, _broadcast_rate),
    "broadcast too long": (
        80002,
        lambda sb: _send(
            sb,
            "broadcast",
            {
                "Random": 1,
                "MsgBody": [
                    {"MsgType": "TIMTextElem", "MsgContent": {"Text": "x" * 12000}}
                ],
            },
        ),
    ),
    "broadcast to an unknown command": (
        10003,
        lambda sb: _raw(sb, "v4/group_open_http_svc/send_nothing"),
    ),
}


def test_it_maps_every_code_the_tencent_sandbox_answers(live_server, hook, subtests):
    # One test with subtests rather than one test each: every live_server test pays
    # for a database flush, and each scenario only needs a fresh app.
    for name, (code, scenario) in TENCENT_SCENARIOS.items():
        with subtests.test(name, code=code):
            result = scenario(new_sandbox(live_server.url, hook))
            assert (result.outcome, result.error_code) == (Outcome.FAILED, code), result
            assert result.action_status == "FAIL"
            assert result.error_info
            assert result.retryable is tencent.classify(code).retryable
            assert result.explanation == tencent.classify(code).explanation
            assert result.explanation == explain("tencent", code)


def test_it_reads_success_discard_and_drop_from_the_sandbox(sandbox, settings):
    ok = tencent.send(sandbox.creds, "text", TEXT_BODY)
    assert (ok.outcome, ok.error_code, ok.action_status, ok.drop_reason) == (
        Outcome.OK,
        0,
        "OK",
        "",
    )
    assert ok.request_id.startswith("Id-") and ok.msg_seq == 1 and ok.msg_time
    # Discarded by the webhook: success to the sender, nothing delivered.
    sandbox.hook.always({"ActionStatus": "OK", "ErrorCode": 2, "ErrorInfo": ""})
    discarded = tencent.send(sandbox.creds, "text", TEXT_BODY)
    assert discarded.ok and discarded.msg_seq == 2
    sandbox.hook.always({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""})
    # A room of its own, so its one-second window starts empty.
    create_room(sandbox.sandbox_app, "busy-room")
    settings.SANDBOX_RATE_LIMITS = {"room": 1}
    busy = {**TEXT_BODY, "RoomId": "busy-room"}
    assert tencent.send(sandbox.creds, "text", busy).ok
    dropped = tencent.send(sandbox.creds, "text", busy)
    assert (dropped.outcome, dropped.error_code, dropped.drop_reason) == (
        Outcome.DROPPED,
        0,
        "MsgFreqCtrl",
    )
    assert dropped.retryable is True
    broadcast = tencent.send(sandbox.creds, "broadcast", BROADCAST_BODY)
    assert broadcast.ok and broadcast.msg_seq == 1 and broadcast.request_id == ""


def test_it_renews_an_expired_cached_usersig_against_the_sandbox(sandbox):
    key = tencent._cache_key(sandbox.creds)
    tencent._usersigs[key] = (expired_usersig(sandbox), time.time() + 3600)
    result = tencent.send(sandbox.creds, "text", TEXT_BODY)
    assert result.ok
    assert tencent._usersigs[key][0] != expired_usersig(sandbox)


def _zego_raw(sb: Sandbox, params: dict, **changes: str | None) -> SendResult:
    query = dict(zego.signed_query(sb.creds, {}))
    query.update(changes)
    pairs = [(k, v) for k, v in query.items() if v is not None]
    pairs += list(params.items())
    return zego.parse_response(_get(sb.site + "/sandbox/zego/", pairs))


def _zego_send(sb: Sandbox, params: dict) -> SendResult:
    return zego.send(sb.creds, "command", params)


COMMAND = {"RoomId": "room-1", "FromUserId": "bot", "MessageContent": "ping"}


def _zego_rate(sb: Sandbox) -> SendResult:
    with override_settings(SANDBOX_RATE_LIMITS={"zego": 1}):
        assert _zego_send(sb, COMMAND).ok
        return _zego_send(sb, COMMAND)


def _zego_stale(sb: Sandbox) -> SendResult:
    query = zego.signed_query(sb.creds, COMMAND, timestamp=int(time.time()) - 601)
    return zego.parse_response(_get(sb.site + "/sandbox/zego/", query))


def _zego_wrong_secret(sb: Sandbox) -> SendResult:
    register_app("zego", sb.app.app_id, "another-server-secret", admins=[])
    return _zego_send(sb, COMMAND)


def _zego_unknown_app(sb: Sandbox) -> SendResult:
    SandboxApp.objects.filter(pk=sb.sandbox_app.pk).delete()
    return _zego_send(sb, COMMAND)


def _zego_post(sb: Sandbox) -> SendResult:
    query = urllib.parse.urlencode(zego.signed_query(sb.creds, COMMAND))
    request = urllib.request.Request(
        f"{sb.site}/sandbox/zego/?{query}", data=b"{}", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=10)
    assert exc.value.code == 405
    return zego.parse_response(json.loads(exc.value.read()))


ZEGO_SCENARIOS: dict[str, tuple[int, Callable[..., SendResult]]] = {
    "POST instead of GET": (1, _zego_post),
    "no Action": (100000006, lambda sb: _zego_raw(sb, COMMAND, Action="")),
    "unknown Action": (
        100000007,
        lambda sb: _zego_raw(sb, COMMAND, Action="KickoutUser2"),
    ),
    "bad AppId": (100000001, lambda sb: _zego_raw(sb, COMMAND, AppId="x")),
    "no nonce": (100000008, lambda sb: _zego_raw(sb, COMMAND, SignatureNonce=None)),
    "no Timestamp": (100000002, lambda sb: _zego_raw(sb, COMMAND, Timestamp=None)),
    "bad Timestamp": (100000003, lambda sb: _zego_raw(sb, COMMAND, Timestamp="soon")),
    "no Signature": (100000009, lambda sb: _zego_raw(sb, COMMAND, Signature=None)),
    "no SignatureVersion": (
        100000013,
        lambda sb: _zego_raw(sb, COMMAND, SignatureVersion=None),
    ),
    "SignatureVersion 1.0": (
        100000014,
        lambda sb: _zego_raw(sb, COMMAND, SignatureVersion="1.0"),
    ),
    "unknown AppId": (100000010, _zego_unknown_app),
    "stale Timestamp": (100000004, _zego_stale),
    "wrong secret": (100000005, _zego_wrong_secret),
    "no FromUserId": (
        2,
        lambda sb: _zego_send(sb, {"RoomId": "room-1", "MessageContent": "m"}),
    ),
    "empty content": (
        1008,
        lambda sb: _zego_send(sb, {**COMMAND, "MessageContent": ""}),
    ),
    "too many recipients": (
        50011,
        lambda sb: _zego_send(
            sb, {**COMMAND, "ToUserId[]": [str(n) for n in range(11)]}
        ),
    ),
    "content too long": (
        50012,
        lambda sb: _zego_send(sb, {**COMMAND, "MessageContent": "é" * 513}),
    ),
    "room does not exist": (
        50001,
        lambda sb: _zego_send(sb, {**COMMAND, "RoomId": "nowhere"}),
    ),
    "rate limit": (206, _zego_rate),
    "gateway internal error (sandbox trigger)": (
        100000015,
        lambda sb: _zego_send(sb, {**COMMAND, "RoomId": "sandbox-fail-100000015"}),
    ),
}


def test_it_maps_every_code_the_zego_sandbox_answers(live_server, hook, subtests):
    for name, (code, scenario) in ZEGO_SCENARIOS.items():
        with subtests.test(name, code=code):
            result = scenario(new_zego_sandbox(live_server.url, hook))
            assert (result.outcome, result.error_code) == (Outcome.FAILED, code), result
            assert result.error_info and result.request_id
            assert result.retryable is zego.classify(code).retryable
            assert result.explanation == explain("zego", code)


def test_it_reads_zego_success_from_the_sandbox(zego_sandbox):
    result = zego.send(
        zego_sandbox.creds, "command", {**COMMAND, "ToUserId[]": ["a", "b"]}
    )
    assert (result.outcome, result.error_code, result.error_info) == (
        Outcome.OK,
        0,
        "success",
    )
    assert result.request_id.isdigit()
    assert result.response_body["Data"] == {"FailUsers": []}
