"""The sandbox's Tencent REST API over real HTTP (pytest-django live_server)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from messaging.sandbox.models import SandboxMessage, SandboxRoom
from messaging.sandbox.services import create_room, mute_member
from tests.factories import make_app, make_sandbox_app
from tests.sandbox_support import (
    WebhookReceiver,
    build_usersig,
    gen_usersig,
    tencent_url,
)

TEXT = ("live_engine_http_srv", "send_text_msg")
CUSTOM = ("live_engine_http_srv", "send_custom_msg")
BROADCAST = ("group_open_http_svc", "send_broadcast_msg")


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def app(live_server, hook):
    app = make_app(identifier="administrator")
    sandbox = make_sandbox_app(app, rooms=("room-1", "room-2"), callback_url=hook.url)
    app.sandbox = sandbox
    return app


@pytest.fixture
def http():
    with httpx.Client(timeout=10) as client:
        yield client


def post(http, live_server, api, app, body, **query) -> dict:
    url = tencent_url(live_server.url, *api, app, **query)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = http.post(
        url, content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    return response.json()


def text(room="room-1", sender="host1", content="hello", **extra) -> dict:
    return {"RoomId": room, "Sender_Account": sender, "TextContent": content, **extra}


def assert_error(answer: dict, code: int) -> None:
    assert answer["ErrorCode"] == code, answer
    assert answer["ActionStatus"] == "FAIL"
    assert answer["ErrorInfo"]


def test_it_delivers_a_text_message(http, live_server, app):
    answer = post(http, live_server, TEXT, app, text(ExtensionInfo='{"level":3}'))
    assert answer["ActionStatus"] == "OK"
    assert answer["ErrorCode"] == 0
    assert answer["ErrorInfo"] == ""
    assert answer["RequestId"].startswith("Id-")
    assert set(answer["Response"]) == {"MsgTime", "MsgSeq", "MsgDropReason"}
    assert answer["Response"]["MsgSeq"] == 1
    assert answer["Response"]["MsgDropReason"] == ""
    assert abs(answer["Response"]["MsgTime"] - time.time()) < 5
    message = SandboxMessage.objects.get()
    assert message.room.room_id == "room-1"
    assert (message.msg_seq, message.sender, message.kind) == (1, "host1", "text")
    assert message.msg_body == [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello"}}
    ]
    assert message.cloud_custom_data == '{"level":3}'
    assert message.request_id == answer["RequestId"]
    assert message.msg_time == answer["Response"]["MsgTime"]


def test_it_delivers_a_custom_message_as_a_wrapped_custom_elem(http, live_server, app):
    answer = post(
        http,
        live_server,
        CUSTOM,
        app,
        {"RoomId": "room-2", "BusinessId": "gift", "Data": "rose x3"},
    )
    assert answer["ErrorCode"] == 0
    message = SandboxMessage.objects.get()
    # Without Sender_Account the admin identifier sends.
    assert (message.sender, message.kind, message.room.room_id) == (
        "administrator",
        "custom",
        "room-2",
    )
    assert message.msg_body == [
        {
            "MsgType": "TIMCustomElem",
            "MsgContent": {"Data": '{"BusinessId":"gift","Data":"rose x3"}'},
        }
    ]


def test_it_numbers_messages_per_room(http, live_server, app):
    seqs = [
        post(http, live_server, TEXT, app, text(room=room))["Response"]["MsgSeq"]
        for room in ["room-1", "room-1", "room-2", "room-1", "room-2"]
    ]
    assert seqs == [1, 2, 1, 3, 2]
    ids = {post(http, live_server, TEXT, app, text())["RequestId"] for _ in range(3)}
    assert len(ids) == 3
    assert list(
        SandboxMessage.objects.filter(room__room_id="room-1").values_list(
            "msg_seq", flat=True
        )
    ) == [6, 5, 4, 3, 2, 1]


def test_it_accepts_the_boundaries_of_random_and_a_text_of_exactly_12_kb(
    http, live_server, app
):
    for random in ["0", "4294967295"]:
        assert (
            post(http, live_server, TEXT, app, text(), random=random)["ErrorCode"] == 0
        )
    answer = post(http, live_server, TEXT, app, text(content="é" * 6144))
    assert answer["ErrorCode"] == 0


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"sdkappid": None}, 60012),
        ({"sdkappid": "14x"}, 60006),
        ({"sdkappid": "1234"}, 70020),
        ({"random": None}, 60002),
        ({"random": "4294967296"}, 60002),
        ({"random": "-1"}, 60002),
        ({"random": "abc"}, 60002),
        ({"contenttype": None}, 60002),
        ({"contenttype": "xml"}, 60002),
        ({"identifier": ""}, 60004),
        ({"usersig": ""}, 70002),
        ({"usersig": "garbage*not-a-sig"}, 70003),
        (
            {
                "usersig": "eJyrVgrxCvZUslIqSk1U0lFQSi0qyswrUbIyNDIzNDQ2NjU1MrMwNjIxMjA0NDIDAB6xC6E_"
            },
            70003,
        ),
    ],
)
def test_it_checks_every_query_parameter(http, live_server, app, query, code):
    assert_error(post(http, live_server, TEXT, app, text(), **query), code)
    assert not SandboxMessage.objects.exists()


def test_it_rejects_a_usersig_made_with_another_key(http, live_server, app):
    sig = gen_usersig(app.app_id, "another-secret-key", app.identifier)
    assert_error(post(http, live_server, TEXT, app, text(), usersig=sig), 70009)


def test_it_rejects_a_usersig_for_another_identifier(http, live_server, app):
    sig = gen_usersig(app.app_id, app.secret_key, "someone-else")
    assert_error(post(http, live_server, TEXT, app, text(), usersig=sig), 70013)


def test_it_rejects_a_usersig_for_another_sdkappid(http, live_server, app):
    sig = gen_usersig(app.app_id + 1, app.secret_key, app.identifier)
    assert_error(post(http, live_server, TEXT, app, text(), usersig=sig), 70014)


def test_it_rejects_an_expired_usersig(http, live_server, app):
    now = int(time.time())
    expired = build_usersig(
        app.app_id, app.secret_key, app.identifier, issued=now - 100, expire=60
    )
    assert_error(post(http, live_server, TEXT, app, text(), usersig=expired), 70001)
    # The same construction with time left is accepted: only the expiry differs.
    valid = build_usersig(
        app.app_id, app.secret_key, app.identifier, issued=now - 100, expire=3600
    )
    assert post(http, live_server, TEXT, app, text(), usersig=valid)["ErrorCode"] == 0


def test_it_requires_an_app_admin_as_identifier(http, live_server, app):
    sig = gen_usersig(app.app_id, app.secret_key, "host1")
    answer = post(http, live_server, TEXT, app, text(), identifier="host1", usersig=sig)
    assert_error(answer, 60010)


def test_it_answers_unknown_apis_and_other_methods(http, live_server, app):
    base = live_server.url
    unknown_service = tencent_url(base, "no_such_svc", "send_text_msg", app)
    assert_error(http.post(unknown_service, content=b"{}").json(), 60009)
    unknown_live = tencent_url(base, "live_engine_http_srv", "send_nothing", app)
    answer = http.post(unknown_live, content=b"{}").json()
    assert_error(answer, 60009)
    assert answer["RequestId"].startswith("Id-")
    unknown_group = tencent_url(base, "group_open_http_svc", "send_nothing", app)
    assert_error(http.post(unknown_group, content=b"{}").json(), 10003)
    response = http.get(tencent_url(base, *TEXT, app))
    assert response.status_code == 200
    assert_error(response.json(), 60002)


@pytest.mark.parametrize(
    "body", [b"", b"   ", b"{not json", b'["RoomId"]', b"\xff\xfe"]
)
def test_it_rejects_a_body_that_is_not_a_json_object(http, live_server, app, body):
    assert_error(post(http, live_server, TEXT, app, body), 60003)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"Sender_Account": "host1", "TextContent": "hi"}, 100002),
        (text(room=5), 100002),
        (text(room=""), 100002),
        ({"RoomId": "room-1", "TextContent": "hi"}, 100002),
        (text(sender=123), 60015),
        (text(sender=""), 100002),
        (text(sender="u" * 33), 100002),
        ({"RoomId": "room-1", "Sender_Account": "host1"}, 100002),
        (text(content=["hi"]), 100002),
        (text(content=""), 100002),
        (text(content="x" * 12289), 100603),
        (text(content="é" * 6145), 100603),
        (text(ExtensionInfo="not json"), 100002),
        (text(ExtensionInfo={"a": 1}), 100002),
        (text(ExtensionInfo=json.dumps({"a": "x" * 12289})), 100603),
    ],
)
def test_it_checks_the_text_message_fields(http, live_server, app, body, code):
    assert_error(post(http, live_server, TEXT, app, body), code)
    assert not SandboxMessage.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"RoomId": "room-1", "Data": "x"}, 100002),
        ({"RoomId": "room-1", "BusinessId": 7, "Data": "x"}, 100002),
        ({"RoomId": "room-1", "BusinessId": "gift"}, 100002),
        ({"RoomId": "room-1", "BusinessId": "gift", "Data": ""}, 100002),
        ({"RoomId": "room-1", "BusinessId": "gift", "Data": True}, 100002),
        ({"RoomId": "room-1", "BusinessId": "gift", "Data": {"a": 1}}, 100002),
        ({"RoomId": "room-1", "BusinessId": "gift", "Data": "x" * 12289}, 100603),
        (
            {"RoomId": "room-1", "Sender_Account": 5, "BusinessId": "g", "Data": "x"},
            60015,
        ),
        ({"BusinessId": "gift", "Data": "x"}, 100002),
    ],
)
def test_it_checks_the_custom_message_fields(http, live_server, app, body, code):
    assert_error(post(http, live_server, CUSTOM, app, body), code)


def test_it_accepts_an_integer_custom_data_as_the_field_table_types_it(
    http, live_server, app
):
    body = {
        "RoomId": "room-1",
        "Sender_Account": "host1",
        "BusinessId": "n",
        "Data": 42,
    }
    assert post(http, live_server, CUSTOM, app, body)["ErrorCode"] == 0
    assert SandboxMessage.objects.get().msg_body[0]["MsgContent"]["Data"] == (
        '{"BusinessId":"n","Data":42}'
    )


def test_it_answers_100004_for_an_unknown_room_and_100006_for_a_room_that_is_not_live(
    http, live_server, app
):
    assert_error(post(http, live_server, TEXT, app, text(room="nowhere")), 100004)
    create_room(app.sandbox, "chat-room", live=False)
    assert_error(post(http, live_server, TEXT, app, text(room="chat-room")), 100006)
    assert_error(
        post(
            http,
            live_server,
            CUSTOM,
            app,
            {"RoomId": "nowhere", "BusinessId": "b", "Data": "d"},
        ),
        100004,
    )


def test_it_refuses_a_muted_sender_until_the_mute_ends(http, live_server, app, hook):
    mute_member(app.sandbox, "room-1", "host1", 600)
    assert_error(post(http, live_server, TEXT, app, text(sender="host1")), 100601)
    # Muted in room-1 only, and other senders still speak.
    assert post(http, live_server, TEXT, app, text(room="room-2"))["ErrorCode"] == 0
    assert post(http, live_server, TEXT, app, text(sender="host2"))["ErrorCode"] == 0
    mute_member(app.sandbox, "room-1", "host1", 0)
    assert post(http, live_server, TEXT, app, text(sender="host1"))["ErrorCode"] == 0
    # A muted sender never reaches the before-send webhook.
    commands = [
        hook.hits.get_nowait().query["CallbackCommand"]
        for _ in range(hook.hits.qsize())
    ]
    assert commands.count("Group.CallbackBeforeSendMsg") == 3


def test_it_limits_live_engine_calls_per_app(http, live_server, app, settings):
    settings.SANDBOX_RATE_LIMITS = {"live_engine": 3}
    codes = [post(http, live_server, TEXT, app, text())["ErrorCode"] for _ in range(5)]
    assert codes == [0, 0, 0, 100602, 100602]
    assert SandboxMessage.objects.count() == 3
    # Another app has its own budget.
    other = make_app()
    make_sandbox_app(other, rooms=("room-1",), callback_url=app.sandbox.callback_url)
    assert post(http, live_server, TEXT, other, text())["ErrorCode"] == 0


def test_it_drops_messages_over_the_room_frequency_with_msgfreqctrl(
    http, live_server, app, settings
):
    settings.SANDBOX_RATE_LIMITS = {"room": 4}
    answers = [
        post(http, live_server, TEXT, app, text(content=f"m{i}")) for i in range(6)
    ]
    assert [a["ErrorCode"] for a in answers] == [0] * 6
    assert [a["ActionStatus"] for a in answers] == ["OK"] * 6
    assert [a["Response"]["MsgDropReason"] for a in answers] == [""] * 4 + [
        "MsgFreqCtrl"
    ] * 2
    assert [a["Response"]["MsgSeq"] for a in answers] == [1, 2, 3, 4, 5, 6]
    # Dropped messages never reach the audience; the other room is not affected.
    assert [m.texts[0] for m in SandboxMessage.objects.order_by("msg_seq")] == [
        "m0",
        "m1",
        "m2",
        "m3",
    ]
    assert (
        post(http, live_server, TEXT, app, text(room="room-2"))["Response"][
            "MsgDropReason"
        ]
        == ""
    )


def test_it_documents_the_default_limits():
    from messaging.sandbox.limits import DEFAULT_RATE_LIMITS

    assert DEFAULT_RATE_LIMITS == {
        "live_engine": 200,
        "broadcast": 1,
        "zego": 100,
        "room": 40,
    }


def test_it_answers_internal_errors_with_100001_and_10002(http, live_server, app):
    from django.db import connection

    # A secret that cannot be decrypted (e.g. a rotated encryption key) is a server fault.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sandbox_sandboxapp SET secret = %s WHERE id = %s",
            ["not-a-fernet-token", app.sandbox.pk],
        )
    assert_error(post(http, live_server, TEXT, app, text()), 100001)
    assert_error(post(http, live_server, BROADCAST, app, {"Random": 1}), 10002)


# --- broadcast ---------------------------------------------------------------------

BODY = {
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


def test_it_broadcasts_to_every_live_room(http, live_server, app):
    create_room(app.sandbox, "chat-room", live=False)
    answer = post(http, live_server, BROADCAST, app, BODY)
    assert answer == {
        "ActionStatus": "OK",
        "ErrorInfo": "",
        "ErrorCode": 0,
        "MsgSeq": 1,
    }
    delivered = SandboxMessage.objects.order_by("room__room_id")
    assert [m.room.room_id for m in delivered] == ["room-1", "room-2"]
    for message in delivered:
        assert (message.kind, message.sender, message.random) == (
            "broadcast",
            "test",
            8912345,
        )
        assert message.msg_body == BODY["MsgBody"]
        assert message.cloud_custom_data == "your cloud custom data"


def test_it_limits_broadcasts_to_one_a_second(http, live_server, app):
    assert post(http, live_server, BROADCAST, app, BODY)["ErrorCode"] == 0
    assert_error(post(http, live_server, BROADCAST, app, {**BODY, "Random": 2}), 10023)


def test_it_discards_a_repeated_broadcast_within_five_minutes(
    http, live_server, app, settings
):
    settings.SANDBOX_RATE_LIMITS = {"broadcast": 100}
    first = post(http, live_server, BROADCAST, app, BODY)
    again = post(http, live_server, BROADCAST, app, BODY)
    assert first["MsgSeq"] == again["MsgSeq"] == 1
    assert again["ErrorCode"] == 0
    assert SandboxMessage.objects.count() == 2  # one per room, once
    # Another Random, or other content, is another message.
    assert post(http, live_server, BROADCAST, app, {**BODY, "Random": 1})["MsgSeq"] == 2
    other = {**BODY, "CloudCustomData": "other"}
    assert post(http, live_server, BROADCAST, app, other)["MsgSeq"] == 3
    assert SandboxMessage.objects.count() == 6


def test_it_sends_a_broadcast_as_the_admin_without_from_account(http, live_server, app):
    body = {
        "Random": 5,
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}],
    }
    assert post(http, live_server, BROADCAST, app, body)["ErrorCode"] == 0
    assert set(SandboxMessage.objects.values_list("sender", flat=True)) == {
        "administrator"
    }


def _elems(*elems):
    return {**BODY, "MsgBody": list(elems)}


TEXT_ELEM = {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}
CUSTOM_ELEM = {"MsgType": "TIMCustomElem", "MsgContent": {"Data": "x"}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({k: v for k, v in BODY.items() if k != "Random"}, 10004),
        ({**BODY, "Random": -1}, 10004),
        ({**BODY, "Random": 4294967296}, 10004),
        ({**BODY, "Random": "1"}, 10004),
        ({**BODY, "Random": True}, 10004),
        ({k: v for k, v in BODY.items() if k != "MsgBody"}, 10004),
        (_elems(), 10004),
        ({**BODY, "MsgBody": {"MsgType": "TIMTextElem"}}, 10004),
        (_elems({"MsgType": "TIMNoSuchElem", "MsgContent": {}}), 10004),
        (_elems({"MsgType": "TIMTextElem", "MsgContent": {}}), 10004),
        (_elems({"MsgType": "TIMTextElem", "MsgContent": "hi"}), 10004),
        (_elems({"MsgType": "TIMCustomElem", "MsgContent": {"Data": 5}}), 10004),
        (_elems(CUSTOM_ELEM, CUSTOM_ELEM), 10004),
        ({**BODY, "CloudCustomData": 5}, 10004),
        ({**BODY, "From_Account": 5}, 60015),
        (
            _elems({"MsgType": "TIMTextElem", "MsgContent": {"Text": "x" * 11990}}),
            80002,
        ),
    ],
)
def test_it_checks_the_broadcast_fields(http, live_server, app, body, code):
    assert_error(post(http, live_server, BROADCAST, app, body), code)
    assert not SandboxMessage.objects.exists()


def test_it_accepts_a_broadcast_of_exactly_12000_bytes(http, live_server, app):
    overhead = len(
        json.dumps(
            [{"MsgType": "TIMTextElem", "MsgContent": {"Text": ""}}],
            separators=(",", ":"),
        )
    )
    body = _elems(TEXT_ELEM | {"MsgContent": {"Text": "x" * (12000 - overhead)}})
    assert post(http, live_server, BROADCAST, app, body)["ErrorCode"] == 0


def test_it_refuses_broadcasts_when_the_console_switch_is_off(http, live_server, app):
    app.sandbox.broadcast_enabled = False
    app.sandbox.save()
    assert_error(post(http, live_server, BROADCAST, app, BODY), 10007)
    assert SandboxRoom.objects.filter(messages__isnull=False).count() == 0
