"""End to end: a message sent through the sandbox provider (over HTTP, signed with
a UserSig from TLSSigAPIv2) goes through LiveAdmin's webhook (signed with the app's
webhook token) and is forbidden, discarded or masked as the blocklist entry says."""

from __future__ import annotations

import json

import httpx
import pytest

from messaging.sandbox.models import SandboxMessage
from tests.factories import make_app, make_sandbox_app
from tests.sandbox_support import tencent_url
from webhooks import services
from webhooks.models import Decision
from webhooks.recorder import recorder

pytestmark = pytest.mark.django_db(transaction=True)

TEXT = ("live_engine_http_srv", "send_text_msg")
CUSTOM = ("live_engine_http_srv", "send_custom_msg")


@pytest.fixture
def app(live_server):
    app = make_app(identifier="administrator", webhook_token="e2e-token")
    # Empty callback URL: the sandbox calls this site's /webhooks/tencent.
    make_sandbox_app(app, rooms=("room-1",))
    return app


@pytest.fixture
def blocklist(db):
    return services.create_list("E2E", app=None)


def send(live_server, app, api, body) -> dict:
    with httpx.Client(timeout=10) as http:
        response = http.post(tencent_url(live_server.url, *api, app), json=body)
    assert response.status_code == 200
    return response.json()


def text(content: str, **extra) -> dict:
    return {
        "RoomId": "room-1",
        "Sender_Account": "host1",
        "TextContent": content,
        **extra,
    }


def test_a_forbidden_word_is_refused_with_10016(live_server, app, blocklist):
    services.add_entry(blocklist, term="scam")
    answer = send(live_server, app, TEXT, text("total SCAM"))
    assert (answer["ActionStatus"], answer["ErrorCode"]) == ("FAIL", 10016)
    assert not SandboxMessage.objects.exists()
    recorder.flush()
    decision = Decision.objects.get()
    assert (decision.action, decision.room_id, decision.sender, decision.text) == (
        "forbid",
        "room-1",
        "host1",
        "total SCAM",
    )


def test_a_moderator_code_reaches_the_sender(live_server, app, blocklist):
    services.add_entry(blocklist, term="casino", code=10150, info="No gambling")
    answer = send(live_server, app, TEXT, text("casino tonight"))
    assert (answer["ActionStatus"], answer["ErrorCode"], answer["ErrorInfo"]) == (
        "FAIL",
        10150,
        "No gambling",
    )
    assert not SandboxMessage.objects.exists()


def test_a_discarded_message_looks_sent_but_is_not_delivered(
    live_server, app, blocklist
):
    services.add_entry(blocklist, term="follow me", action="discard")
    answer = send(live_server, app, TEXT, text("pls follow me"))
    assert (answer["ActionStatus"], answer["ErrorCode"]) == ("OK", 0)
    assert not SandboxMessage.objects.exists()


def test_a_masked_message_is_delivered_with_asterisks(live_server, app, blocklist):
    services.add_entry(blocklist, term="darn", action="mask")
    answer = send(
        live_server, app, TEXT, text("oh darn it", ExtensionInfo='{"note":"darn"}')
    )
    assert answer["ErrorCode"] == 0
    message = SandboxMessage.objects.get()
    assert message.msg_body == [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "oh **** it"}}
    ]
    assert json.loads(message.cloud_custom_data) == {"note": "****"}
    assert message.modified is True


def test_a_custom_message_is_masked_inside_its_wrapped_json(
    live_server, app, blocklist
):
    services.add_entry(blocklist, term="darn", action="mask")
    answer = send(
        live_server,
        app,
        CUSTOM,
        {"RoomId": "room-1", "BusinessId": "gift", "Data": "darn rose"},
    )
    assert answer["ErrorCode"] == 0
    [element] = SandboxMessage.objects.get().msg_body
    assert element["MsgType"] == "TIMCustomElem"
    assert json.loads(element["MsgContent"]["Data"]) == {
        "BusinessId": "gift",
        "Data": "**** rose",
    }


def test_a_clean_message_is_delivered_unchanged(live_server, app, blocklist):
    services.add_entry(blocklist, term="scam")
    assert send(live_server, app, TEXT, text("hello room"))["ErrorCode"] == 0
    message = SandboxMessage.objects.get()
    assert message.msg_body == [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello room"}}
    ]
    assert message.modified is False
