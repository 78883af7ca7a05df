"""The ``sendmsg`` command: one JSON line per send, exit status, refusals."""

from __future__ import annotations

import io
import json
import socket

import pytest
from django.core.management import CommandError, call_command

from liveadmin.roles import Role
from messaging.models import SendRecord
from messaging.sandbox.models import SandboxMessage
from tests.factories import make_app, make_sandbox_app, make_user
from tests.recording_server import recording_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def server():
    yield from recording_server()


@pytest.fixture
def sender(db):
    return make_user("cli-manager", role=Role.MANAGER)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sendmsg(*args: str) -> list[dict]:
    out = io.StringIO()
    try:
        call_command("sendmsg", *args, stdout=out)
    finally:
        sendmsg.last_output = out.getvalue()  # type: ignore[attr-defined]
    return [json.loads(line) for line in out.getvalue().splitlines()]


def refused(*args: str) -> CommandError:
    with pytest.raises(CommandError) as exc:
        sendmsg(*args)
    return exc.value


def text_args(app_name: str, *extra: str) -> list[str]:
    return [
        "text",
        "--app",
        app_name,
        "--as",
        "cli-manager",
        "--room",
        "demo-room",
        "--sender",
        "host1",
        "--text",
        "hello",
        *extra,
    ]


def test_it_prints_one_json_object_for_a_send(sender, server):
    server.answer(
        {
            "ActionStatus": "OK",
            "ErrorCode": 0,
            "ErrorInfo": "",
            "RequestId": "Id-cli-1",
            "Response": {"MsgTime": 1750000000, "MsgSeq": 3, "MsgDropReason": ""},
        }
    )
    app = make_app(name="live", base_url=server.url)
    (line,) = sendmsg(*text_args("live", "--extension-info", '{"k": 1}'))
    record = SendRecord.objects.get()
    assert line == {
        "ok": True,
        "outcome": "ok",
        "error_code": 0,
        "error_info": "",
        "request_id": "Id-cli-1",
        "msg_seq": 3,
        "msg_time": 1750000000,
        "drop_reason": "",
        "explanation": "Sent.",
        "retryable": False,
        "record": record.pk,
        "room_id": "demo-room",
    }
    assert (record.user, record.app, record.outcome) == (sender, app, "ok")
    assert server.received[0].json() == {
        "RoomId": "demo-room",
        "Sender_Account": "host1",
        "TextContent": "hello",
        "ExtensionInfo": '{"k": 1}',
    }


def test_it_exits_non_zero_when_a_send_is_dropped(sender, server):
    server.answer(
        {
            "ActionStatus": "OK",
            "ErrorCode": 0,
            "ErrorInfo": "",
            "RequestId": "Id-cli-2",
            "Response": {"MsgTime": 1, "MsgSeq": 4, "MsgDropReason": "MsgFreqCtrl"},
        }
    )
    make_app(name="live", base_url=server.url)
    error = refused(*text_args("live"))
    assert error.returncode == 1
    (line,) = [json.loads(x) for x in sendmsg.last_output.splitlines()]
    assert (line["ok"], line["outcome"], line["drop_reason"]) == (
        False,
        "dropped",
        "MsgFreqCtrl",
    )
    assert (line["error_code"], line["msg_seq"]) == (0, 4)


def test_it_sends_custom_broadcast_and_command(sender, server):
    for _ in range(2):
        server.answer(
            {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "MsgSeq": 5}
        )
    server.answer({"Code": 0, "Message": "success", "RequestId": "z-1"})
    make_app(name="live", base_url=server.url)
    make_app(name="zlive", provider="zego", base_url=server.url + "/zego")
    common = ["--as", "cli-manager"]
    sendmsg(
        "custom",
        "--app",
        "live",
        *common,
        "--room",
        "r1",
        "--business-id",
        "gift",
        "--data",
        "rose",
    )
    sendmsg(
        "broadcast",
        "--app",
        "live",
        *common,
        "--from",
        "ops",
        "--custom-data",
        '{"type":1}',
        "--cloud-custom-data",
        "ccd",
    )
    (line,) = sendmsg(
        "command",
        "--app",
        "zlive",
        *common,
        "--room",
        "zr",
        "--from",
        "bot",
        "--to",
        "a",
        "b",
        "--to",
        "c",
        "--content",
        "ping",
    )
    assert line["ok"] is True and line["request_id"] == "z-1"
    custom, broadcast, command = server.received
    assert custom.json() == {"RoomId": "r1", "BusinessId": "gift", "Data": "rose"}
    body = broadcast.json()
    assert body == {
        "From_Account": "ops",
        "Random": body["Random"],
        "MsgBody": [{"MsgType": "TIMCustomElem", "MsgContent": {"Data": '{"type":1}'}}],
        "CloudCustomData": "ccd",
    }
    assert SendRecord.objects.get(kind="broadcast").random == body["Random"]
    assert [v for k, v in command.query if k == "ToUserId[]"] == ["a", "b", "c"]
    assert command.param("FromUserId") == "bot"
    assert command.param("MessageContent") == "ping"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (text_args("nope"), "--app: no app named 'nope' (apps: live, zlive)"),
        (
            [
                "text",
                "--app",
                "live",
                "--as",
                "ghost",
                "--room",
                "r",
                "--sender",
                "s",
                "--text",
                "t",
            ],
            "--as: no user named 'ghost'",
        ),
        (
            [
                "text",
                "--app",
                "live",
                "--as",
                "cli-mod",
                "--room",
                "r",
                "--sender",
                "s",
                "--text",
                "t",
            ],
            "--as: the user 'cli-mod' is not a community manager",
        ),
        (
            [
                "text",
                "--app",
                "live",
                "--as",
                "cli-gone",
                "--room",
                "r",
                "--sender",
                "s",
                "--text",
                "t",
            ],
            "--as: the user 'cli-gone' is inactive",
        ),
        (
            text_args("live", "--extension-info", "not json")[:-2]
            + ["--extension-info", "{x"],
            "--extension-info: Extension info must be JSON",
        ),
        (
            [
                "text",
                "--app",
                "live",
                "--as",
                "cli-manager",
                "--room",
                "r" * 49,
                "--sender",
                "s" * 40,
                "--text",
                " ",
            ],
            "--room: A room ID is at most 48 bytes.; --sender: A user ID is at most 32 bytes.; --text: Enter the message text. (nothing was sent)",
        ),
        (
            [
                "command",
                "--app",
                "live",
                "--as",
                "cli-manager",
                "--room",
                "r",
                "--from",
                "u",
                "--content",
                "c",
            ],
            "A tencent app cannot send 'command'",
        ),
        (
            [
                "command",
                "--app",
                "zlive",
                "--as",
                "cli-manager",
                "--room",
                "r",
                "--from",
                "u",
                "--content",
                "x" * 1025,
            ],
            "--content: The content is 1,025 bytes; the limit is 1024 bytes. (nothing was sent)",
        ),
        (
            [
                "command",
                "--app",
                "zlive",
                "--as",
                "cli-manager",
                "--room",
                "r",
                "--from",
                "u",
                "--content",
                "c",
                "--to",
                *[str(n) for n in range(11)],
            ],
            "--to: 11 recipients; at most 10",
        ),
    ],
)
def test_it_refuses_bad_input_with_exit_2_and_sends_nothing(
    sender, server, args, message
):
    make_user("cli-mod", role=Role.MODERATOR)
    make_user("cli-gone", role=Role.MANAGER, is_active=False)
    make_app(name="live", base_url=server.url)
    make_app(name="zlive", provider="zego", base_url=server.url)
    error = refused(*args)
    assert error.returncode == 2
    assert message in str(error)
    assert sendmsg.last_output == ""
    assert SendRecord.objects.count() == 0
    assert server.received == []


def test_it_refuses_a_disabled_app(sender, server):
    make_app(name="off", base_url=server.url, enabled=False)
    error = refused(*text_args("off"))
    assert (error.returncode, str(error)) == (
        2,
        "The app off is disabled; it cannot send. (nothing was sent)",
    )
    assert server.received == []


def test_it_requires_text_or_custom_data_for_a_broadcast(sender):
    make_app(name="live")
    error = refused(
        "broadcast",
        "--app",
        "live",
        "--as",
        "cli-manager",
        "--text",
        "a",
        "--custom-data",
        "b",
    )
    assert "not allowed with argument" in str(error)
    error = refused("broadcast", "--app", "live", "--as", "cli-manager")
    assert "one of the arguments --text --custom-data is required" in str(error)
    assert SendRecord.objects.count() == 0


# --- against the sandbox (live_server) --------------------------------------------------------


def test_it_sends_hello_to_the_demo_room(live_server):
    """The issue's "done": sendmsg text --app demo --as manager --room demo-room
    --sender host1 --text hello prints ok true with a RequestId and MsgSeq."""
    call_command(
        "seed_demo", "--base-url", live_server.url + "/sandbox", stdout=io.StringIO()
    )
    args = ["text", "--app", "demo", "--as", "manager", "--room", "demo-room"]
    (line,) = sendmsg(*args, "--sender", "host1", "--text", "hello")
    assert line["ok"] is True and line["outcome"] == "ok"
    assert line["request_id"].startswith("Id-") and line["msg_seq"] == 1
    assert (line["error_code"], line["error_info"], line["drop_reason"]) == (0, "", "")
    message = SandboxMessage.objects.get(room__room_id="demo-room")
    assert message.msg_body == [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello"}}
    ]
    assert message.request_id == line["request_id"]


def test_it_reports_a_provider_refusal_and_exits_1(live_server):
    make_user("cli-manager", role=Role.MANAGER)
    app = make_app(name="live", base_url=live_server.url + "/sandbox")
    make_sandbox_app(
        app, rooms=("demo-room",), callback_url=f"http://127.0.0.1:{closed_port()}/"
    )
    args = text_args("live")
    args[args.index("demo-room")] = "gone-room"
    error = refused(*args)
    assert error.returncode == 1
    (line,) = [json.loads(x) for x in sendmsg.last_output.splitlines()]
    assert (line["ok"], line["outcome"], line["error_code"]) == (
        False,
        "failed",
        100004,
    )
    assert line["explanation"] == (
        "The room does not exist: it was never created or has been dissolved."
    )
    assert line["request_id"].startswith("Id-")
    assert SendRecord.objects.get().outcome == "failed"


def test_it_sends_a_zego_command_to_the_sandbox(live_server):
    make_user("cli-manager", role=Role.MANAGER)
    app = make_app(
        name="zlive", provider="zego", base_url=live_server.url + "/sandbox/zego"
    )
    make_sandbox_app(app, rooms=("stage",))
    (line,) = sendmsg(
        "command",
        "--app",
        "zlive",
        "--as",
        "cli-manager",
        "--room",
        "stage",
        "--from",
        "bot",
        "--content",
        "ping",
    )
    assert line["ok"] is True and line["request_id"].isdigit()
    assert SandboxMessage.objects.get(room__room_id="stage").sender == "bot"
