"""The sandbox's ZEGO SendCustomCommand over real HTTP (docs/providers.md, "ZEGO server API")."""

from __future__ import annotations

import time

import httpx
import pytest

from messaging.sandbox.models import SandboxMessage
from messaging.sandbox.zego import signature
from tests.factories import make_app, make_sandbox_app
from tests.sandbox_support import zego_query


@pytest.fixture
def app(live_server):
    app = make_app(provider="zego", app_id=1700000042, identifier="liveadmin")
    app.sandbox = make_sandbox_app(app, rooms=("123321",))
    return app


def call(live_server, query, method="GET", path="/sandbox/zego/") -> httpx.Response:
    with httpx.Client(timeout=10) as http:
        return http.request(method, f"{live_server.url}{path}", params=query)


def command(**params):
    return {
        "RoomId": "123321",
        "FromUserId": "123",
        "MessageContent": "推送自定义信息-新接口",
        **params,
    }


def test_it_matches_the_documented_signature_example():
    assert (
        signature(
            12345, "4fd24687296dd9f3", "9193cc662a4c0ec135ec71fb57194b38", 1615186943
        )
        == "43e5cfcca828314675f91b001390566a"
    )


def test_it_delivers_a_custom_command(live_server, app):
    response = call(
        live_server, zego_query(app, **command(**{"ToUserId[]": ["123", "456"]}))
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["Code"] == 0
    assert answer["Message"] == "success"
    assert answer["RequestId"].isdigit() and len(answer["RequestId"]) == 19
    assert answer["Data"] == {"FailUsers": []}
    message = SandboxMessage.objects.get()
    assert (message.room.room_id, message.sender, message.kind, message.msg_seq) == (
        "123321",
        "123",
        "command",
        1,
    )
    assert message.msg_body == [
        {
            "MsgType": "ZegoCustomCommand",
            "MsgContent": {
                "MessageContent": "推送自定义信息-新接口",
                "ToUserId": ["123", "456"],
            },
        }
    ]
    assert message.request_id == answer["RequestId"]


def test_it_accepts_the_base_url_without_a_trailing_slash(live_server, app):
    response = call(live_server, zego_query(app, **command()), path="/sandbox/zego")
    assert response.status_code == 200
    assert response.json()["Code"] == 0


def test_it_accepts_10_recipients_and_1024_bytes(live_server, app):
    query = zego_query(
        app,
        **command(
            MessageContent="é" * 512, **{"ToUserId[]": [f"u{i}" for i in range(10)]}
        ),
    )
    assert call(live_server, query).json()["Code"] == 0


def test_it_rejects_a_signature_made_with_another_secret(live_server, app):
    answer = call(live_server, zego_query(app, secret="0" * 32, **command())).json()
    assert answer["Code"] == 100000005
    assert not SandboxMessage.objects.exists()


def test_it_rejects_a_timestamp_more_than_ten_minutes_off(live_server, app):
    codes = [
        call(
            live_server, zego_query(app, timestamp=int(time.time()) + skew, **command())
        ).json()["Code"]
        for skew in [-605, 610, -3600]
    ]
    assert codes == [100000004] * 3


def test_it_accepts_a_timestamp_within_ten_minutes(live_server, app):
    query = zego_query(app, timestamp=int(time.time()) - 550, **command())
    assert call(live_server, query).json()["Code"] == 0


CODE_CASES = [
    ({"Action": None}, 100000006),
    ({"Action": "SendBroadcastMessage"}, 100000007),
    ({"AppId": None}, 100000001),
    ({"AppId": "12ab"}, 100000001),
    ({"AppId": "99"}, 100000010),
    ({"SignatureNonce": None}, 100000008),
    ({"Timestamp": None}, 100000002),
    ({"Timestamp": "yesterday"}, 100000003),
    ({"Signature": None}, 100000009),
    ({"Signature": "43e5cfcca828314675f91b001390566a"}, 100000005),
    ({"SignatureVersion": None}, 100000013),
    ({"SignatureVersion": "1.0"}, 100000014),
    ({"RoomId": None}, 2),
    ({"RoomId": "no-such-room"}, 50001),
    ({"FromUserId": None}, 2),
    ({"ToUserId[]": [f"u{i}" for i in range(11)]}, 50011),
    ({"ToUserId[]": ["u1", ""]}, 2),
    ({"MessageContent": None}, 1008),
    ({"MessageContent": "x" * 1025}, 50012),
    ({"MessageContent": "é" * 513}, 50012),
]


def test_it_answers_the_documented_codes(live_server, app):
    got, wanted = [], []
    for params, code in CODE_CASES:
        base = {k: v for k, v in command().items() if k not in params}
        response = call(live_server, zego_query(app, **base, **params))
        assert response.status_code == 200
        answer = response.json()
        assert answer["Message"] and answer["RequestId"]
        assert "Data" not in answer
        got.append((params, answer["Code"]))
        wanted.append((params, code))
    assert got == wanted
    assert not SandboxMessage.objects.exists()


def test_it_limits_calls_per_app(live_server, app, settings):
    settings.SANDBOX_RATE_LIMITS = {"zego": 2}
    settings.SANDBOX_RATE_WINDOW = 60
    codes = [
        call(live_server, zego_query(app, **command())).json()["Code"] for _ in range(4)
    ]
    assert codes == [0, 0, 206, 206]
    assert SandboxMessage.objects.count() == 2


def test_it_answers_a_post_with_405(live_server, app):
    response = call(live_server, zego_query(app, **command()), method="POST")
    assert response.status_code == 405
    assert response.json()["Code"] == 1


def test_it_answers_internal_errors_with_the_gateway_code(live_server, app):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sandbox_sandboxapp SET secret = %s", ["not-a-fernet-token"]
        )
    assert call(live_server, zego_query(app, **command())).json()["Code"] == 100000015


def test_it_numbers_commands_per_room(live_server, app):
    from messaging.sandbox.services import create_room

    create_room(app.sandbox, "other")
    for room in ["123321", "other", "123321"]:
        assert (
            call(live_server, zego_query(app, **command(RoomId=room))).json()["Code"]
            == 0
        )
    assert sorted(SandboxMessage.objects.values_list("room__room_id", "msg_seq")) == [
        ("123321", 1),
        ("123321", 2),
        ("other", 1),
    ]
