"""The four provider mismatches of issue 8, fixed in the client and in the sandbox
alike (docs/providers.md): the 12 KB counted over the whole message, ZEGO's top-level
50003, the India region, and ZEGO's test environment (IsTest, 10 requests/s)."""

from __future__ import annotations

import io
import json
import os
import time
import uuid

import httpx
import pytest
from django.core.management import call_command

from liveadmin.roles import Role
from messaging import ratelimit
from messaging.models import ProviderApp
from messaging.providers import tencent, zego
from messaging.providers.base import Outcome
from messaging.sandbox import limits
from messaging.sandbox.models import SandboxMessage
from messaging.services.sending import (
    credentials_for,
    send_message,
)
from tests.factories import make_app, make_sandbox_app, make_user
from tests.sandbox_support import tencent_url, zego_query

pytestmark = pytest.mark.django_db

TEXT = ("live_engine_http_srv", "send_text_msg")
CUSTOM = ("live_engine_http_srv", "send_custom_msg")


@pytest.fixture
def http():
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def tencent_app(live_server):
    app = make_app(base_url=live_server.url + "/sandbox")
    # No callback URL: the sandbox then calls this site's own webhook, which allows.
    make_sandbox_app(app, rooms=("room-1",))
    return app


@pytest.fixture
def zego_app(live_server):
    app = make_app(
        provider="zego",
        identifier="liveadmin",
        base_url=live_server.url + "/sandbox/zego",
    )
    make_sandbox_app(app, rooms=("room-1",))
    return app


def raw_post(http, live_server, api, app, body: dict) -> dict:
    """A request straight to the sandbox, past the client's own checks."""
    response = http.post(
        tencent_url(live_server.url, *api, app),
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    return response.json()


# --- (a) 12 KB over the whole message (the client's own checks: test_sending.py) -------


def test_the_sandbox_counts_12_kb_over_the_whole_text_message(
    http, live_server, tencent_app
):
    ext = json.dumps({"x": "e" * 7990})
    over = {
        "RoomId": "room-1",
        "Sender_Account": "host",
        "TextContent": "t" * 8000,
        "ExtensionInfo": ext,
    }
    answer = raw_post(http, live_server, TEXT, tencent_app, over)
    assert (answer["ErrorCode"], answer["ActionStatus"]) == (100603, "FAIL")
    exact = {**over, "TextContent": "t" * (12288 - len(ext))}
    assert raw_post(http, live_server, TEXT, tencent_app, exact)["ErrorCode"] == 0
    assert SandboxMessage.objects.count() == 1


def test_the_sandbox_counts_12_kb_over_business_id_and_data(
    http, live_server, tencent_app
):
    over = {"RoomId": "room-1", "BusinessId": "b" * 100, "Data": "d" * 12288}
    assert raw_post(http, live_server, CUSTOM, tencent_app, over)["ErrorCode"] == 100603
    exact = {**over, "Data": "d" * 12188}
    assert raw_post(http, live_server, CUSTOM, tencent_app, exact)["ErrorCode"] == 0


def test_a_message_at_the_whole_limit_goes_through_client_and_sandbox(tencent_app):
    manager = make_user(role=Role.MANAGER)
    fields = {"room_id": "room-1", "business_id": "gift", "data": "d" * 12284}
    record, result = send_message(tencent_app, "custom", fields, actor=manager)
    assert result.ok, result
    assert record.request_body["Data"] == "d" * 12284


# --- (b) ZEGO's top-level 50003 ------------------------------------------------------------


def test_top_level_50003_is_the_online_user_count_and_is_retried(zego_app):
    result = zego.send(
        credentials_for(zego_app),
        "command",
        {"RoomId": "sandbox-fail-50003", "FromUserId": "u", "MessageContent": "m"},
    )
    assert (result.outcome, result.error_code, result.retryable) == (
        Outcome.FAILED,
        50003,
        True,
    )
    assert "online user count" in result.explanation
    assert "not online" not in result.explanation


def test_50003_in_fail_users_still_means_the_recipient_is_offline():
    result = zego.parse_response(
        {
            "Code": 0,
            "Message": "success",
            "RequestId": "1",
            "Data": {"FailUsers": [{"Uid": "a", "Code": 50003}]},
        },
        recipients=["a"],
    )
    assert result.outcome == Outcome.DROPPED
    assert result.explanation == (
        "Accepted, but none of the recipients got it (they are offline)."
    )


# --- (c) the India region ------------------------------------------------------------------


def test_the_india_region_uses_its_documented_domain():
    assert tencent.REGIONS["india"][1] == "adminapiind.im.qcloud.com"
    app = make_app(region="india")
    assert app.api_base_url == "https://adminapiind.im.qcloud.com"
    assert app.region_label == "India (Mumbai)"


def test_addapp_accepts_the_india_region(monkeypatch):
    monkeypatch.setenv("LIVEADMIN_SECRET", "key")
    out = io.StringIO()
    call_command(
        "addapp",
        "mumbai",
        "--provider",
        "tencent",
        "--app-id",
        "1400000777",
        "--region",
        "India (Mumbai)",
        "--identifier",
        "administrator",
        stdout=out,
    )
    result = json.loads(out.getvalue())
    assert (result["region"], result["api_base_url"]) == (
        "india",
        "https://adminapiind.im.qcloud.com",
    )


# --- (d) ZEGO's test environment -------------------------------------------------------------


def test_a_test_environment_app_sends_is_test_and_the_sandbox_accepts_it(zego_app):
    zego_app.test_environment = True
    zego_app.save()
    creds = credentials_for(zego_app)
    query = dict(zego.signed_query(creds, {"RoomId": "room-1"}))
    assert query["IsTest"] == "true"
    result = zego.send(
        creds, "command", {"RoomId": "room-1", "FromUserId": "u", "MessageContent": "m"}
    )
    assert result.ok, result
    production = credentials_for(make_app(provider="zego"))
    assert "IsTest" not in dict(zego.signed_query(production, {"RoomId": "r"}))


def test_the_sandbox_limits_the_test_environment_to_10_per_second(
    http, live_server, zego_app, settings
):
    settings.SANDBOX_RATE_WINDOW = 60  # a slow machine cannot spread the burst
    test_env = zego_query(
        zego_app, RoomId="room-1", FromUserId="u", MessageContent="m", IsTest="true"
    )
    codes = [
        http.get(f"{live_server.url}/sandbox/zego/", params=test_env).json()["Code"]
        for _ in range(11)
    ]
    assert codes == [0] * 10 + [206]
    # Production has its own budget of 100 per second.
    production = zego_query(
        zego_app, RoomId="room-1", FromUserId="u", MessageContent="m"
    )
    assert (
        http.get(f"{live_server.url}/sandbox/zego/", params=production).json()["Code"]
        == 0
    )


@pytest.mark.parametrize(
    "redis_url",
    [os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/8", ""],
    ids=["redis", "in-process"],
)
def test_the_sandbox_counts_each_call_in_the_second_before_its_arrival(
    settings, redis_url
):
    settings.REDIS_URL = redis_url
    settings.SANDBOX_RATE_LIMITS = {"live_engine": 3}
    scope, t = uuid.uuid4().hex, time.time()

    def call(at: float) -> bool:
        return limits.acquire(scope, "live_engine", at)

    # Three calls that arrived in the last second, checked in any order.
    assert [call(t - 0.9), call(t - 0.1), call(t - 0.5)] == [True, True, True]
    assert not call(t)  # a fourth within a second of them (and not counted)
    assert call(t + 0.15)  # the first has left its window
    assert not call(t + 0.2)


def test_the_limiter_paces_a_test_environment_app_at_10_per_second():
    production = make_app(provider="zego")
    test_env = make_app(provider="zego", test_environment=True)
    assert ratelimit.rate_per_second(production, "command") == 100.0
    assert ratelimit.rate_per_second(test_env, "command") == 10.0
    assert ProviderApp.objects.filter(test_environment=True).count() == 1


def test_a_call_is_stamped_when_it_reaches_the_application(rf):
    from liveadmin import arrival

    request = rf.post("/sandbox/v4/live_engine/send_text_msg")
    before = time.time()
    assert before <= arrival.received_at(request) <= time.time()  # not stamped: now
    middleware = arrival.ArrivalMiddleware(lambda r: None)
    middleware(request)
    stamped = request.META[arrival.META_KEY]
    assert before <= stamped <= time.time()
    request.META[arrival.META_KEY] = stamped - 1  # an earlier stamp is kept
    middleware(request)
    assert arrival.received_at(request) == stamped - 1
    # Under ASGI the entry point's stamp on the scope comes first.
    request.scope = {arrival.SCOPE_KEY: stamped - 5}
    assert arrival.received_at(request) == stamped - 5
