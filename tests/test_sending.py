"""The send service: validation before sending, the audit row written before the
request and updated with the answer, retries, and refusals."""

from __future__ import annotations

import json
import socket
import time

import pytest

from liveadmin.roles import Role
from messaging.models import SendRecord
from messaging.providers import explain, tencent
from messaging.sandbox.models import SandboxApp, SandboxMessage
from messaging.sandbox.services import mute_member
from messaging.services.sending import (
    SendValidationError,
    build_request,
    deliver,
    record_send,
    send_message,
)
from tests.factories import make_app, make_sandbox_app, make_user
from tests.recording_server import recording_server

pytestmark = pytest.mark.django_db

OK_ANSWER = {
    "ActionStatus": "OK",
    "ErrorCode": 0,
    "ErrorInfo": "",
    "RequestId": "Id-ok-1",
    "Response": {"MsgTime": 1750074420, "MsgSeq": 7, "MsgDropReason": ""},
}


@pytest.fixture
def server():
    yield from recording_server()


@pytest.fixture
def actor(db):
    return make_user("sender-manager", role=Role.MANAGER)


def errors_of(app, kind, fields) -> dict[str, list[str]]:
    with pytest.raises(SendValidationError) as exc:
        build_request(app, kind, fields)
    return exc.value.errors


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- validation ------------------------------------------------------------------------


TEXT = {"room_id": "room-1", "sender": "host1", "text": "hello"}


def test_it_requires_the_documented_fields():
    app = make_app()
    assert set(errors_of(app, "text", {})) == {"room_id", "sender", "text"}
    assert set(errors_of(app, "custom", {})) == {"room_id", "business_id", "data"}
    assert errors_of(app, "broadcast", {}) == {
        "text": ["Enter a text, or custom data instead."]
    }
    zego_app = make_app(provider="zego", identifier="")
    assert set(errors_of(zego_app, "command", {})) == {
        "room_id",
        "from_user",
        "content",
    }


def test_it_keeps_text_and_extension_info_under_12_kb():
    app = make_app()
    # 4,096 three-byte characters = 12,288 bytes = 12 KB exactly: allowed.
    assert build_request(app, "text", {**TEXT, "text": "中" * 4096})["TextContent"]
    errors = errors_of(app, "text", {**TEXT, "text": "中" * 4096 + "a"})
    assert errors == {
        "text": ["The text is 12,289 bytes; the limit is 12,288 bytes (12 KB)."]
    }
    errors = errors_of(app, "text", {**TEXT, "extension_info": json.dumps("x" * 12300)})
    assert errors["extension_info"] == [
        "Extension info is 12,302 bytes; the limit is 12,288 bytes (12 KB)."
    ]


def test_it_requires_extension_info_to_be_json():
    app = make_app()
    errors = errors_of(app, "text", {**TEXT, "extension_info": "{data: 1}"})
    assert list(errors) == ["extension_info"]
    assert errors["extension_info"][0].startswith("Extension info must be JSON")


def test_it_limits_custom_data_to_12_kb():
    app = make_app()
    fields = {"room_id": "r", "business_id": "gift", "data": "d" * 12289}
    errors = errors_of(app, "custom", fields)
    assert errors == {
        "data": ["The data is 12,289 bytes; the limit is 12,288 bytes (12 KB)."]
    }
    # The 12 KB count the whole message (issue 8): BusinessId "gift" takes 4 bytes.
    fields["data"] = "d" * (12288 - 4)
    assert build_request(app, "custom", fields)["Data"] == "d" * (12288 - 4)


def test_it_counts_12_kb_over_the_whole_custom_message():
    app = make_app()
    fields = {"room_id": "r", "business_id": "b" * 100, "data": "d" * 12288}
    assert errors_of(app, "custom", fields) == {
        "data": [
            "The message is 12,388 bytes (business id and data together); "
            "the limit is 12,288 bytes (12 KB)."
        ]
    }
    fields["data"] = "d" * 12188
    assert build_request(app, "custom", fields)["Data"] == "d" * 12188


def test_it_counts_12_kb_over_the_whole_text_message():
    app = make_app()
    extension = json.dumps({"k": "x" * 7990})
    fields = {
        "room_id": "r",
        "sender": "host",
        "text": "t" * 8000,
        "extension_info": extension,
    }
    size = 8000 + len(extension)
    assert errors_of(app, "text", fields) == {
        "extension_info": [
            f"The message is {size:,} bytes (text and extension info together); "
            "the limit is 12,288 bytes (12 KB)."
        ]
    }
    fields["text"] = "t" * (12288 - len(extension))
    assert build_request(app, "text", fields)["TextContent"] == fields["text"]


def test_it_limits_the_broadcast_body_to_12000_bytes():
    app = make_app()
    # [{"MsgType":"TIMTextElem","MsgContent":{"Text":"..."}}] wraps the text in 52 bytes.
    assert build_request(app, "broadcast", {"text": "a" * (12000 - 52)})
    errors = errors_of(app, "broadcast", {"text": "a" * (12000 - 51)})
    assert errors == {
        "text": [
            "The message body is 12,001 bytes; a broadcast is at most 12,000 bytes."
        ]
    }
    errors = errors_of(app, "broadcast", {"text": "hi", "custom_data": "x"})
    assert errors == {"custom_data": ["Give either a text or custom data, not both."]}


@pytest.mark.parametrize("value", [-1, 4294967296, "abc"])
def test_it_keeps_random_in_range(value):
    errors = errors_of(make_app(), "broadcast", {"text": "hi", "random": value})
    assert errors == {"random": ["Random must be an integer 0..4294967295."]}


def test_it_limits_room_and_user_ids():
    app = make_app()
    errors = errors_of(app, "text", {**TEXT, "room_id": "r" * 49, "sender": "s" * 33})
    assert errors == {
        "room_id": ["A room ID is at most 48 bytes."],
        "sender": ["A user ID is at most 32 bytes."],
    }
    assert errors_of(app, "text", {**TEXT, "room_id": "räum"}) == {
        "room_id": ["A room ID uses printable ASCII characters only."]
    }
    assert (
        build_request(app, "text", {**TEXT, "room_id": " " + "r" * 48 + " "})["RoomId"]
        == "r" * 48
    )
    errors = errors_of(app, "broadcast", {"text": "hi", "from_account": "f" * 33})
    assert errors == {"from_account": ["A user ID is at most 32 bytes."]}


def test_it_limits_zego_content_and_recipients():
    app = make_app(provider="zego")
    fields = {"room_id": "r", "from_user": "u", "content": "é" * 512}
    assert build_request(app, "command", fields)["MessageContent"] == "é" * 512
    errors = errors_of(app, "command", {**fields, "content": "é" * 512 + "x"})
    assert errors == {
        "content": ["The content is 1,025 bytes; the limit is 1024 bytes."]
    }
    to_users = [f"u{n}" for n in range(11)]
    errors = errors_of(app, "command", {**fields, "to_users": to_users})
    assert errors == {
        "to_users": ["11 recipients; at most 10 (leave empty for the whole room)."]
    }
    # Duplicates and blanks are dropped before counting.
    params = build_request(
        app, "command", {**fields, "to_users": to_users[:10] + ["u1", " "]}
    )
    assert params["ToUserId[]"] == to_users[:10]


def test_it_refuses_disabled_apps_and_foreign_kinds():
    app = make_app(enabled=False)
    assert errors_of(app, "text", TEXT) == {
        "__all__": [f"The app {app.name} is disabled; it cannot send."]
    }
    assert errors_of(make_app(), "command", {})["__all__"][0].startswith(
        "A tencent app cannot send 'command'"
    )
    assert errors_of(make_app(provider="zego"), "text", TEXT)["__all__"]


def test_it_sends_nothing_on_bad_input(actor):
    with pytest.raises(SendValidationError):
        send_message(make_app(), "text", {**TEXT, "text": ""}, actor=actor)
    assert SendRecord.objects.count() == 0


# --- recording and delivering ----------------------------------------------------------------


def test_it_records_before_sending_without_secrets(actor, server):
    server.answer(OK_ANSWER)
    app = make_app(base_url=server.url, secret_key="do-not-store-this-key")
    body = build_request(app, "text", {**TEXT, "extension_info": '{"a":1}'})
    record = record_send(app, "text", body, actor=actor)
    row = SendRecord.objects.get(pk=record.pk)
    assert (row.outcome, row.attempts, row.user, row.app) == ("waiting", 0, actor, app)
    assert (row.kind, row.room_id, row.sender) == ("text", "room-1", "host1")
    assert 0 <= row.random <= 4294967295
    assert row.request_body == {
        "RoomId": "room-1",
        "Sender_Account": "host1",
        "TextContent": "hello",
        "ExtensionInfo": '{"a":1}',
    }
    assert server.received == []

    result = deliver(record)
    assert result.ok
    row.refresh_from_db()
    assert row.outcome == "ok"
    assert (row.action_status, row.error_code, row.error_info) == ("OK", 0, "")
    assert (row.request_id, row.msg_seq, row.msg_time) == ("Id-ok-1", 7, 1750074420)
    assert (row.drop_reason, row.http_status, row.attempts, row.retryable) == (
        "",
        200,
        1,
        False,
    )
    assert row.latency_ms is not None and row.latency_ms >= 0
    assert row.response_body == OK_ANSWER
    stored = json.dumps([row.request_body, row.response_body])
    usersig = server.received[0].param("usersig")
    assert usersig not in stored and "do-not-store-this-key" not in stored


def test_it_keeps_the_broadcast_random_across_retries(actor, server):
    app = make_app(base_url=server.url)
    server.answer({"ActionStatus": "FAIL", "ErrorCode": 10023, "ErrorInfo": "freq"})
    server.answer({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "MsgSeq": 9})
    body = build_request(app, "broadcast", {"text": "all rooms"})
    record = record_send(app, "broadcast", body, actor=actor)
    assert record.random == body["Random"]
    first = deliver(record, final_attempt=False)
    assert (first.retryable, first.retry_after) == (True, 1.0)
    row = SendRecord.objects.get(pk=record.pk)
    assert (row.outcome, row.error_code, row.retryable, row.attempts) == (
        "waiting",
        10023,
        True,
        1,
    )
    second = deliver(row)
    assert second.ok
    row.refresh_from_db()
    assert (row.outcome, row.error_code, row.msg_seq, row.attempts) == ("ok", 0, 9, 2)
    randoms = [r.json()["Random"] for r in server.received]
    assert randoms == [record.random, record.random]


def test_it_writes_a_retryable_failure_on_the_final_attempt(actor, server):
    server.answer(
        {"ActionStatus": "FAIL", "ErrorCode": 100001, "ErrorInfo": "internal"}
    )
    app = make_app(base_url=server.url)
    record, result = send_message(app, "text", TEXT, actor=actor)
    assert (result.outcome, result.retryable) == ("failed", True)
    record.refresh_from_db()
    assert (record.outcome, record.error_code, record.error_info) == (
        "failed",
        100001,
        "internal",
    )
    assert record.retryable is True


def test_it_never_sends_an_answered_record_again(actor, server):
    server.answer(OK_ANSWER)
    app = make_app(base_url=server.url)
    record, _ = send_message(app, "text", TEXT, actor=actor)
    stale = SendRecord.objects.get(pk=record.pk)
    again = deliver(stale)
    assert len(server.received) == 1
    assert again.ok and again.request_id == "Id-ok-1" and again.msg_seq == 7
    # A copy loaded before the first delivery cannot send either.
    outdated = SendRecord.objects.get(pk=record.pk)
    outdated.outcome, outdated.attempts = "waiting", 0
    assert deliver(outdated).request_id == "Id-ok-1"
    assert len(server.received) == 1
    assert SendRecord.objects.get(pk=record.pk).attempts == 1


def test_it_does_not_send_an_attempt_another_worker_claimed(actor, server):
    app = make_app(base_url=server.url)
    record = record_send(app, "text", build_request(app, "text", TEXT), actor=actor)
    # The other worker bumped attempts (its claim) and is waiting for the provider.
    SendRecord.objects.filter(pk=record.pk).update(attempts=1)
    result = deliver(record)
    assert (result.outcome, result.retryable) == ("failed", True)
    assert (
        result.explanation == "This message is being sent by another worker right now."
    )
    assert server.received == []
    assert SendRecord.objects.get(pk=record.pk).outcome == "waiting"


def test_it_refuses_to_deliver_for_a_disabled_app(actor, server):
    app = make_app(base_url=server.url)
    record = record_send(app, "text", build_request(app, "text", TEXT), actor=actor)
    app.enabled = False
    app.save()
    result = deliver(SendRecord.objects.get(pk=record.pk))
    assert (result.outcome, result.retryable) == ("failed", False)
    record.refresh_from_db()
    assert (record.outcome, record.error_info) == ("failed", "app disabled")
    assert server.received == []


def test_it_records_a_network_failure_as_retryable(actor):
    app = make_app(base_url=f"http://127.0.0.1:{closed_port()}/sandbox")
    record, result = send_message(app, "text", TEXT, actor=actor)
    assert (result.outcome, result.retryable, result.http_status) == (
        "failed",
        True,
        None,
    )
    assert result.error_info.startswith("ConnectError")
    assert "network" in result.explanation
    row = SendRecord.objects.get(pk=record.pk)
    assert (row.outcome, row.retryable, row.attempts) == ("failed", True, 1)
    assert row.error_info == result.error_info
    assert row.error_code is None and row.request_id == ""
    assert "usersig" not in row.error_info


def test_it_fails_permanently_on_an_unusable_base_url(actor):
    app = make_app(base_url="ftp://127.0.0.1/sandbox")
    record, result = send_message(app, "text", TEXT, actor=actor)
    assert (result.outcome, result.retryable) == ("failed", False)
    assert "base URL" in result.explanation
    row = SendRecord.objects.get(pk=record.pk)
    assert (row.outcome, row.error_info) == (
        "failed",
        "UnsupportedProtocol: the API URL is not valid",
    )


def test_it_keeps_a_network_failure_waiting_when_not_final(actor):
    app = make_app(base_url=f"http://127.0.0.1:{closed_port()}")
    body = build_request(
        app, "custom", {"room_id": "r", "business_id": "b", "data": "d"}
    )
    record = record_send(app, "custom", body, actor=actor)
    deliver(record, final_attempt=False)
    row = SendRecord.objects.get(pk=record.pk)
    assert (row.outcome, row.retryable, row.attempts) == ("waiting", True, 1)
    assert row.error_info.startswith("ConnectError")


def test_it_caches_the_usersig_across_sends(actor, server):
    server.answer(OK_ANSWER)
    server.answer(OK_ANSWER)
    app = make_app(base_url=server.url)
    send_message(app, "text", TEXT, actor=actor)
    send_message(app, "text", TEXT, actor=actor)
    sigs = {r.param("usersig") for r in server.received}
    assert len(sigs) == 1
    assert sigs == {
        tencent.usersig(
            tencent.Credentials(
                "tencent", app.app_id, app.identifier, app.secret_key, ""
            )
        )
    }


# --- end to end against the sandbox (live_server) ------------------------------------------


@pytest.fixture
def hook():
    for server in recording_server():
        server.always({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""})
        yield server


@pytest.fixture
def live_app(live_server, hook):
    app = make_app(base_url=live_server.url + "/sandbox")
    make_sandbox_app(app, rooms=("room-1", "room-2"), callback_url=hook.url + "/hook")
    return app


def delivered(room_id: str) -> list[SandboxMessage]:
    return list(
        SandboxMessage.objects.filter(room__room_id=room_id).order_by("msg_seq")
    )


def test_it_sends_a_text_through_the_sandbox(actor, live_app, hook):
    fields = {**TEXT, "extension_info": '{"gift": 1}'}
    record, result = send_message(live_app, "text", fields, actor=actor)
    assert result.ok
    row = SendRecord.objects.get(pk=record.pk)
    assert (row.outcome, row.action_status, row.error_code, row.msg_seq) == (
        "ok",
        "OK",
        0,
        1,
    )
    assert row.request_id.startswith("Id-") and row.request_id == result.request_id
    assert abs(row.msg_time - time.time()) < 60
    assert (row.http_status, row.attempts, row.drop_reason) == (200, 1, "")
    assert row.response_body["Response"] == {
        "MsgTime": row.msg_time,
        "MsgSeq": 1,
        "MsgDropReason": "",
    }
    (message,) = delivered("room-1")
    assert (message.msg_seq, message.sender, message.kind) == (1, "host1", "text")
    assert message.msg_body == [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello"}}
    ]
    assert message.cloud_custom_data == '{"gift": 1}'
    # The before-send webhook saw the message as the provider sends it.
    before = hook.received[0]
    assert before.param("CallbackCommand") == "Group.CallbackBeforeSendMsg"
    assert before.json()["GroupId"] == "room-1"
    _, second = send_message(live_app, "text", fields, actor=actor)
    assert second.msg_seq == 2


def test_it_sends_custom_and_broadcast_through_the_sandbox(actor, live_app):
    _, custom = send_message(
        live_app,
        "custom",
        {"room_id": "room-2", "business_id": "gift", "data": "rose"},
        actor=actor,
    )
    assert custom.ok
    (message,) = delivered("room-2")
    assert json.loads(message.msg_body[0]["MsgContent"]["Data"]) == {
        "BusinessId": "gift",
        "Data": "rose",
    }
    record, broadcast = send_message(
        live_app, "broadcast", {"text": "to everyone"}, actor=actor
    )
    assert broadcast.ok and broadcast.msg_seq == 1
    for room in ("room-1", "room-2"):
        last = delivered(room)[-1]
        assert (last.kind, last.random) == ("broadcast", record.random)
        assert last.msg_body == [
            {"MsgType": "TIMTextElem", "MsgContent": {"Text": "to everyone"}}
        ]


def test_it_sends_a_zego_command_through_the_sandbox(actor, live_server):
    app = make_app(provider="zego", base_url=live_server.url + "/sandbox/zego")
    make_sandbox_app(app, rooms=("stage",))
    record, result = send_message(
        app,
        "command",
        {
            "room_id": "stage",
            "from_user": "bot",
            "to_users": ["a", "b"],
            "content": "推送",
        },
        actor=actor,
    )
    assert result.ok
    row = SendRecord.objects.get(pk=record.pk)
    assert (row.outcome, row.error_code, row.action_status, row.sender) == (
        "ok",
        0,
        "OK",
        "bot",
    )
    assert row.request_id.isdigit() and row.msg_seq is None
    assert row.request_body == {
        "RoomId": "stage",
        "FromUserId": "bot",
        "ToUserId[]": ["a", "b"],
        "MessageContent": "推送",
    }
    (message,) = delivered("stage")
    assert message.msg_body[0]["MsgContent"] == {
        "MessageContent": "推送",
        "ToUserId": ["a", "b"],
    }


def test_it_records_a_dropped_message(actor, live_app, settings):
    settings.SANDBOX_RATE_LIMITS = {"room": 1}
    first, _ = send_message(live_app, "text", TEXT, actor=actor)
    record, result = send_message(live_app, "text", TEXT, actor=actor)
    assert (result.outcome, result.ok, result.drop_reason) == (
        "dropped",
        False,
        "MsgFreqCtrl",
    )
    row = SendRecord.objects.get(pk=record.pk)
    assert (row.outcome, row.error_code, row.drop_reason) == (
        "dropped",
        0,
        "MsgFreqCtrl",
    )
    assert row.msg_seq == 2 and row.request_id.startswith("Id-")
    assert [m.msg_seq for m in delivered("room-1")] == [1]


def assert_failed_permanently(record: SendRecord, result, code: int) -> None:
    row = SendRecord.objects.get(pk=record.pk)
    assert (row.outcome, row.action_status, row.error_code, row.retryable) == (
        "failed",
        "FAIL",
        code,
        False,
    )
    assert row.error_info and row.request_id.startswith("Id-")
    assert result.explanation == explain("tencent", code)


def test_it_records_a_send_to_a_missing_room(actor, live_app):
    record, result = send_message(
        live_app, "text", {**TEXT, "room_id": "room-9"}, actor=actor
    )
    assert_failed_permanently(record, result, 100004)


def test_it_records_a_send_from_a_muted_sender(actor, live_app):
    mute_member(SandboxApp.objects.get(app_id=live_app.app_id), "room-2", "host1", 60)
    record, result = send_message(
        live_app, "text", {**TEXT, "room_id": "room-2"}, actor=actor
    )
    assert_failed_permanently(record, result, 100601)
    assert delivered("room-2") == []


def test_it_retries_a_frequency_limit_with_the_same_random(actor, live_app, settings):
    # Our own limiter (messaging/ratelimit.py) would space the two broadcasts a
    # second apart; pace it 10x faster so the provider's 1/s limit answers 10023.
    settings.RATE_LIMIT_HEADROOM = -9.0
    first, _ = send_message(live_app, "broadcast", {"text": "one"}, actor=actor)
    body = build_request(live_app, "broadcast", {"text": "two"})
    record = record_send(live_app, "broadcast", body, actor=actor)
    limited = deliver(record, final_attempt=False)
    assert (limited.error_code, limited.retryable) == (10023, True)
    row = SendRecord.objects.get(pk=record.pk)
    assert (row.outcome, row.error_code, row.attempts) == ("waiting", 10023, 1)
    # The caller waits as long as the answer says (the broadcast limit is 1/s).
    time.sleep(limited.retry_after)
    result = deliver(SendRecord.objects.get(pk=record.pk), final_attempt=False)
    assert result.ok
    row.refresh_from_db()
    assert row.outcome == "ok" and row.attempts == 2
    assert delivered("room-1")[-1].random == record.random


def test_it_relies_on_the_broadcast_random_when_an_answer_was_lost(
    actor, live_app, settings
):
    """A broadcast re-sent with the same Random within 5 minutes is discarded by the
    provider as a repeat and answered with the first MsgSeq: re-sending is safe."""
    settings.SANDBOX_RATE_LIMITS = {"broadcast": 100}
    body = build_request(live_app, "broadcast", {"text": "once"})
    first = deliver(record_send(live_app, "broadcast", body, actor=actor))
    again = deliver(record_send(live_app, "broadcast", body, actor=actor))
    assert first.ok and again.ok
    assert again.msg_seq == first.msg_seq
    assert [m.msg_seq for m in delivered("room-1") if m.kind == "broadcast"] == [1]
