"""The core pages in Korean and Chinese: navigation, overview, users, sign-in, second
factor, error pages, the sandbox pages and commands. Keys and machine output stay
English."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import translation

from liveadmin.roles import Role
from liveadmin.templatetags.when import when
from tests.conftest import client_for
from tests.factories import PASSWORD, make_app, make_sandbox_app, make_user
from tests.sandbox_support import tencent_url

pytestmark = pytest.mark.django_db

KO = {"HTTP_ACCEPT_LANGUAGE": "ko"}
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN"}


def test_the_overview_and_navigation_come_in_korean_with_english_keys(users):
    body = client_for(users["manager"]).get("/", **KO).content.decode()
    assert "<h1>개요</h1>" in body
    assert '<p class="nav-heading">메시지</p>' in body
    assert 'data-section="Messages"' in body  # the key stays English
    assert ">발송</a>" in body and ">메뉴</button>" in body
    assert "결과별 내 발송" in body  # the chart's title
    assert "Your messages" not in body


def test_the_administrators_overview_and_user_list_come_in_chinese(users):
    client = client_for(users["admin"])
    body = client.get("/", **ZH).content.decode()
    assert "<h1>概览</h1>" in body and "服务商应用" in body
    body = client.get(reverse("user-list"), **ZH).content.decode()
    assert "<h1>用户</h1>" in body and "添加用户" in body
    assert "社区运营人员" in body  # the manager's role, by its Chinese name
    assert 'data-role="community manager"' in body


def test_a_users_own_lockout_error_comes_in_korean(users):
    admin = users["admin"]
    response = client_for(admin).post(
        reverse("user-edit", args=[admin.pk]),
        {"email": "", "roles": ["MANAGER"], "active": "on"},
        **KO,
    )
    assert response.status_code == 200
    assert "자신의 관리자 역할을 제거하거나" in response.content.decode()


def test_the_error_pages_come_in_the_page_language(users):
    response = client_for(users["manager"]).get(reverse("user-list"), **ZH)
    assert response.status_code == 403
    body = response.content.decode()
    assert "无权访问" in body and "返回概览" in body


def test_the_sign_in_and_lock_pages_come_in_chinese():
    body = Client().get(reverse("login"), **ZH).content.decode()
    assert "<title>登录 · LiveAdmin</title>" in body
    make_user("victim", role=Role.MANAGER)
    client = Client()
    for _ in range(5):
        client.post(reverse("login"), {"username": "victim", "password": "x"}, **ZH)
    response = client.post(
        reverse("login"), {"username": "victim", "password": PASSWORD}, **ZH
    )
    assert response.status_code == 429
    assert "登录已锁定 15 分钟" in response.content.decode()


def test_a_wrong_second_factor_code_is_explained_in_korean(admin_user, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    client = Client()
    client.post(
        reverse("login"), {"username": admin_user.username, "password": PASSWORD}
    )
    response = client.post(reverse("otp-verify"), {"code": "000000"}, **KO)
    body = response.content.decode()
    assert "<h1>2단계 인증 로그인</h1>" in body
    assert "코드가 올바르지 않거나 이미 사용되었습니다." in body


def test_the_sandbox_room_form_errors_come_in_chinese_but_the_api_stays_english(
    admin_user,
):
    app = make_app(name="Main app", identifier="administrator")
    sandbox = make_sandbox_app(app, rooms=("room-1",))
    response = client_for(admin_user).post(
        reverse("sandbox:room-create"),
        {"app": sandbox.pk, "room_id": "salle-été"},
        **ZH,
    )
    body = response.content.decode()
    assert "房间 ID 只能使用可打印的 ASCII 字符。" in body
    assert "<h1>沙箱房间</h1>" in body

    url = tencent_url("", "live_engine_http_srv", "create_room", app)
    answer = (
        Client()
        .post(
            url,
            json.dumps({"RoomInfo": {"RoomId": "@TGS#1", "RoomType": "Live"}}),
            content_type="application/json",
            **ZH,
        )
        .json()
    )
    assert answer["ErrorCode"] == 100002
    assert (
        answer["ErrorInfo"] == "Room IDs starting with @TGS# are reserved by Tencent."
    )


def test_the_sandbox_command_keeps_json_english_and_translates_its_errors():
    make_app(name="main", identifier="administrator")
    out = io.StringIO()
    with translation.override("ko"):
        call_command("sandbox", "app", "sync", "--app", "main", stdout=out)
        line = json.loads(out.getvalue())
        assert line["callback_url"] == "(this site's /webhooks/tencent)"
        with pytest.raises(CommandError, match="이름이 'nope'인 앱이 없습니다"):
            call_command("sandbox", "app", "sync", "--app", "nope")


def test_server_rendered_times_follow_the_language():
    at = datetime(2026, 12, 6, 20, 5, 7, tzinfo=UTC)
    with translation.override("en"):
        assert ">2026-12-06 20:05 UTC</time>" in when(at)
    with translation.override("ko"):
        assert ">2026년 12월 6일 20:05:07 UTC</time>" in when(at, "seconds")
    with translation.override("zh-hans"):
        assert ">2026年12月6日 20:05 UTC</time>" in when(at)


def test_chart_series_keep_english_keys_and_show_translated_names():
    from liveadmin.overview import action_name

    with translation.override("zh-hans"):
        assert str(action_name("allow")) == "已放行"
        assert action_name("no-such-action") == "no-such-action"
    with translation.override("en"):
        assert str(action_name("allow")) == "Allowed"
