"""The sandbox calls the app's before-send webhook and applies its answer
(docs/providers.md, "Before-send webhook"); a tiny HTTP server plays the app's webhook."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import httpx

from messaging.sandbox.models import SandboxMessage
from tests.factories import make_app, make_sandbox_app
from tests.sandbox_support import WebhookReceiver, answer_json, tencent_url

TEXT = ("live_engine_http_srv", "send_text_msg")
CUSTOM = ("live_engine_http_srv", "send_custom_msg")
BEFORE = "Group.CallbackBeforeSendMsg"
AFTER = "Group.CallbackAfterSendMsg"
OK = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}


def setup_app(hook_url: str, **app_fields):
    app = make_app(identifier="administrator", **app_fields)
    app.sandbox = make_sandbox_app(app, rooms=("room-1",), callback_url=hook_url)
    return app


def send(live_server, app, api=TEXT, body=None) -> dict:
    body = body or {
        "RoomId": "room-1",
        "Sender_Account": "jared",
        "TextContent": "red packet",
        "ExtensionInfo": '{"level":3}',
    }
    with httpx.Client(timeout=10) as http:
        response = http.post(tencent_url(live_server.url, *api, app), json=body)
    assert response.status_code == 200
    return response.json()


def test_it_posts_the_documented_before_send_request(live_server):
    with WebhookReceiver() as hook:
        app = setup_app(hook.url)
        answer = send(live_server, app)
        hit = hook.next(BEFORE)
    assert answer["ErrorCode"] == 0
    assert hit.path == "/hook"
    assert hit.query == {
        "SdkAppid": str(app.app_id),
        "CallbackCommand": BEFORE,
        "contenttype": "json",
        "ClientIP": "127.0.0.1",
        "OptPlatform": "RESTAPI",
    }
    body = dict(hit.body)
    random, msg_id, event_time = (
        body.pop("Random"),
        body.pop("MsgId"),
        body.pop("EventTime"),
    )
    assert body == {
        "CallbackCommand": BEFORE,
        "GroupId": "room-1",
        "Type": "Live",
        "From_Account": "jared",
        "Operator_Account": "administrator",
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "red packet"}}],
        "CloudCustomData": '{"level":3}',
    }
    assert isinstance(random, int) and 0 <= random <= 4294967295
    tinyid, seconds, msg_random = msg_id.split("-")
    assert tinyid.isdigit() and abs(int(seconds) - time.time()) < 5
    assert msg_random == str(random)
    assert isinstance(event_time, int) and abs(event_time / 1000 - time.time()) < 5
    assert SandboxMessage.objects.get().random == random


def test_it_wraps_a_custom_message_for_the_webhook(live_server):
    with WebhookReceiver() as hook:
        app = setup_app(hook.url)
        body = {"RoomId": "room-1", "BusinessId": "gift", "Data": "rose"}
        assert send(live_server, app, CUSTOM, body)["ErrorCode"] == 0
        hit = hook.next(BEFORE)
    assert hit.body["From_Account"] == "administrator"
    assert hit.body["MsgBody"] == [
        {
            "MsgType": "TIMCustomElem",
            "MsgContent": {"Data": '{"BusinessId":"gift","Data":"rose"}'},
        }
    ]
    assert "CloudCustomData" not in hit.body


def test_it_signs_the_callback_when_the_app_has_a_token(live_server):
    with WebhookReceiver() as hook:
        app = setup_app(hook.url, webhook_token="hook-token-1")
        send(live_server, app)
        hit = hook.next(BEFORE)
    request_time = hit.query["RequestTime"]
    assert abs(int(request_time) - time.time()) < 5
    assert (
        hit.query["Sign"]
        == hashlib.sha256(f"hook-token-1{request_time}".encode()).hexdigest()
    )


def test_it_posts_the_after_send_callback_with_seq_and_time(live_server):
    with WebhookReceiver() as hook:
        app = setup_app(hook.url)
        answer = send(live_server, app)
        before = hook.next(BEFORE)
        after = hook.next(AFTER)
    assert after.query["CallbackCommand"] == AFTER
    assert after.body["CallbackCommand"] == AFTER
    assert after.body["MsgSeq"] == answer["Response"]["MsgSeq"]
    assert after.body["MsgTime"] == answer["Response"]["MsgTime"]
    for field in [
        "GroupId",
        "Type",
        "From_Account",
        "Operator_Account",
        "Random",
        "MsgId",
        "MsgBody",
        "CloudCustomData",
    ]:
        assert after.body[field] == before.body[field]


def test_it_delivers_when_the_webhook_allows(live_server):
    with WebhookReceiver(answer=answer_json(OK)) as hook:
        app = setup_app(hook.url)
        answer = send(live_server, app)
    assert answer["ErrorCode"] == 0 and answer["Response"]["MsgSeq"] == 1
    message = SandboxMessage.objects.get()
    assert message.texts == ["red packet"]
    assert not message.modified


def test_it_delivers_the_body_the_webhook_returns(live_server):
    modified = {
        **OK,
        "MsgBody": [
            {"MsgType": "TIMTextElem", "MsgContent": {"Text": "*** packet"}},
            {
                "MsgType": "TIMCustomElem",
                "MsgContent": {"Desc": "CustomElement.MemberLevel", "Data": "LV1"},
            },
        ],
        "CloudCustomData": "rewritten",
    }
    with WebhookReceiver(answer=answer_json(modified)) as hook:
        app = setup_app(hook.url)
        answer = send(live_server, app)
        after = hook.next(AFTER)
    assert answer["ErrorCode"] == 0
    message = SandboxMessage.objects.get()
    assert message.msg_body == modified["MsgBody"]
    assert message.cloud_custom_data == "rewritten"
    assert message.modified
    # The after-send callback carries the modified message.
    assert after.body["MsgBody"] == modified["MsgBody"]
    assert after.body["CloudCustomData"] == "rewritten"


def test_it_keeps_the_message_when_the_webhook_returns_an_invalid_body(live_server):
    with WebhookReceiver(answer=answer_json({**OK, "MsgBody": "nope"})) as hook:
        app = setup_app(hook.url)
        assert send(live_server, app)["ErrorCode"] == 0
    assert SandboxMessage.objects.get().texts == ["red packet"]


def test_it_answers_10016_when_the_webhook_forbids(live_server):
    with WebhookReceiver(
        answer=answer_json({**OK, "ErrorCode": 1, "ErrorInfo": "no"})
    ) as hook:
        app = setup_app(hook.url)
        answer = send(live_server, app)
    assert answer["ErrorCode"] == 10016
    assert answer["ActionStatus"] == "FAIL"
    assert "Response" not in answer
    assert not SandboxMessage.objects.exists()


def test_it_reports_success_but_delivers_nothing_when_the_webhook_discards(live_server):
    def discard_red_packets(hit):
        text = hit.body["MsgBody"][0]["MsgContent"].get("Text", "")
        return 200, json.dumps({**OK, "ErrorCode": 2 if "red" in text else 0}).encode()

    with WebhookReceiver(answer=discard_red_packets) as hook:
        app = setup_app(hook.url)
        answer = send(live_server, app)
        body = {"RoomId": "room-1", "Sender_Account": "jared", "TextContent": "hello"}
        second = send(live_server, app, body=body)
        # No after-send callback for the discarded message: the first one is the second send's.
        after = hook.next(AFTER)
    assert answer["ErrorCode"] == 0 and answer["ActionStatus"] == "OK"
    assert answer["Response"]["MsgDropReason"] == ""
    assert after.body["MsgSeq"] == second["Response"]["MsgSeq"]
    assert after.body["MsgBody"][0]["MsgContent"]["Text"] == "hello"
    assert SandboxMessage.objects.get().texts == ["hello"]


def test_it_passes_the_webhooks_own_code_and_info(live_server):
    def own_code(hit):
        code = int(hit.body["MsgBody"][0]["MsgContent"]["Text"])
        reply = {
            "ActionStatus": "OK",
            "ErrorCode": code,
            "ErrorInfo": f"blocked {code}",
        }
        return 200, json.dumps(reply).encode()

    with WebhookReceiver(answer=own_code) as hook:
        app = setup_app(hook.url)
        answers = {
            code: send(
                live_server,
                app,
                body={
                    "RoomId": "room-1",
                    "Sender_Account": "u",
                    "TextContent": str(code),
                },
            )
            for code in [10100, 10150, 10200]
        }
    for code, answer in answers.items():
        assert (answer["ErrorCode"], answer["ErrorInfo"]) == (code, f"blocked {code}")
        assert answer["ActionStatus"] == "FAIL"
    assert not SandboxMessage.objects.exists()


FAILURES = {
    "http-500": (500, b'{"ErrorCode":1}'),
    "not-json": (200, b"<html>not json</html>"),
    "not-object": (200, b'["not", "an", "object"]'),
    "no-errorcode": (200, b'{"ActionStatus":"OK"}'),
    "undocumented-code": (200, b'{"ErrorCode":10099,"ErrorInfo":"undocumented"}'),
}


def test_it_delivers_when_the_webhook_fails(live_server):
    def fail(hit):
        return FAILURES[hit.body["MsgBody"][0]["MsgContent"]["Text"]]

    with WebhookReceiver(answer=fail) as hook:
        app = setup_app(hook.url)
        codes = {
            name: send(
                live_server,
                app,
                body={"RoomId": "room-1", "Sender_Account": "u", "TextContent": name},
            )["ErrorCode"]
            for name in FAILURES
        }
    assert codes == dict.fromkeys(FAILURES, 0)
    delivered = SandboxMessage.objects.order_by("msg_seq")
    assert [m.texts[0] for m in delivered] == list(FAILURES)


def test_it_answers_80003_on_webhook_failure_when_the_policy_is_reject(live_server):
    with WebhookReceiver(answer=lambda hit: (502, b"bad gateway")) as hook:
        app = setup_app(hook.url)
        app.sandbox.failure_policy = "reject"
        app.sandbox.save()
        answer = send(live_server, app)
    assert answer["ErrorCode"] == 80003
    assert not SandboxMessage.objects.exists()


def test_it_delivers_when_nothing_listens_at_the_webhook_url(live_server):
    with WebhookReceiver() as hook:
        url = hook.url
    # The receiver is closed: the connection is refused.
    app = setup_app(url)
    assert send(live_server, app)["ErrorCode"] == 0
    assert SandboxMessage.objects.count() == 1


def test_it_gives_up_on_a_slow_webhook_after_two_seconds_and_delivers(live_server):
    hold = threading.Event()
    with WebhookReceiver(hold=hold) as hook:
        app = setup_app(hook.url)
        started = time.monotonic()
        answer = send(live_server, app)
        elapsed = time.monotonic() - started
        hold.set()
    assert answer["ErrorCode"] == 0
    assert 1.9 <= elapsed < 3.5
    assert SandboxMessage.objects.count() == 1


def test_it_answers_80003_on_a_webhook_timeout_when_the_policy_is_reject(
    live_server, settings
):
    settings.SANDBOX_CALLBACK_TIMEOUT = 0.2
    hold = threading.Event()
    with WebhookReceiver(hold=hold) as hook:
        app = setup_app(hook.url)
        app.sandbox.failure_policy = "reject"
        app.sandbox.save()
        answer = send(live_server, app)
        hold.set()
    assert answer["ErrorCode"] == 80003
    assert not SandboxMessage.objects.exists()


def test_it_calls_this_sites_webhook_by_default(live_server):
    from messaging.sandbox.callbacks import callback_url

    app = setup_app("")
    url = callback_url(app.sandbox, live_server.url, BEFORE, "127.0.0.1")
    assert url.startswith(f"{live_server.url}/webhooks/tencent?SdkAppid={app.app_id}&")
    # That view allows a message no rule matches (or, where it is not mounted, the 404
    # counts as a failed callback and the default policy delivers).
    answer = send(live_server, app)
    assert answer["ErrorCode"] == 0
    assert SandboxMessage.objects.get().texts == ["red packet"]


def test_it_appends_the_query_to_a_webhook_url_that_has_one(live_server):
    with WebhookReceiver() as hook:
        app = setup_app(f"{hook.url}?tenant=7")
        send(live_server, app)
        hit = hook.next(BEFORE)
    assert hit.query["tenant"] == "7"
    assert hit.query["CallbackCommand"] == BEFORE
    assert json.dumps(hit.body)
