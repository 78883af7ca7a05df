"""Messaging in Korean and Chinese: pages, form errors and provider explanations in
the reader's language; stored data and the commands' JSON lines unchanged."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from liveadmin.roles import Role
from messaging.forms.send import SendForm
from messaging.providers import explain, explain_drop
from messaging.services.throughput import describe_estimate
from tests.conftest import client_for
from tests.factories import make_app, make_batch, make_send_record, make_user
from tests.recording_server import recording_server

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english_afterwards():
    """A request activates its language for the thread: leave English to the next
    test, as the other tests expect."""
    yield
    translation.activate("en")


@pytest.fixture
def server():
    yield from recording_server()


KO = {"HTTP_ACCEPT_LANGUAGE": "ko-KR,ko;q=0.9"}
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}


def test_it_shows_the_send_page_in_korean(manager):
    app = make_app(name="live")
    page = client_for(manager).get(f"/send/?app={app.pk}&kind=text", **KO)
    assert page.status_code == 200
    text = page.text
    assert "<h1>메시지 발송</h1>" in text
    assert "발신자 계정" in text  # the sender field's label, from messaging/kinds.py
    assert "룸 텍스트 메시지" in text  # the kind's tab
    # send.js reads its texts from the page, translated there.
    assert 'data-bytes="{used} / {max}바이트"' in text
    assert "Send a message" not in text


def test_it_shows_form_errors_in_chinese(manager):
    app = make_app(name="live")
    page = client_for(manager).post(
        "/send/",
        {"app": app.pk, "kind": "text", "rooms": "room-1", "sender": "host"},
        **ZH,
    )
    assert page.status_code == 200
    assert "请输入消息文本。" in page.text
    # The typed values stay.
    assert "room-1" in page.text


def test_it_checks_rooms_in_the_readers_language(manager):
    app = make_app(name="live")
    with translation.override("zh-hans"):
        form = SendForm(
            {"rooms": "a b", "sender": "host", "text": "hi"}, app=app, kind="text"
        )
        assert not form.is_valid()
        assert form.errors["rooms"] == [
            "1 个房间 ID 无效（a b: 房间 ID 为不含空格的可打印 ASCII 字符（每行一个房间））。"
        ]


def test_it_explains_provider_codes_in_the_readers_language():
    translation.activate("en")
    assert explain("tencent", 10017) == "The sender is muted and cannot send messages."
    with translation.override("zh-hans"):
        assert explain("tencent", 10017) == "发送者已被禁言，无法发送消息。"
        assert explain("zego", 104) == "房间不存在。"
        assert explain("tencent", 0) == "已发送。"
        assert explain("tencent", 424242) == "服务商以错误码 424242 拒绝了请求。"
        assert "MsgFreqCtrl" in explain_drop("tencent", "MsgFreqCtrl")
    with translation.override("ko"):
        assert explain("tencent", 10017) == (
            "발신자가 채팅 금지 상태여서 메시지를 보낼 수 없습니다."
        )
        assert describe_estimate(make_app(), "text", 2000) == (
            "룸 2,000개, 200/s: 약 10초"
        )


def test_it_shows_a_stored_error_translated_but_keeps_it_as_stored(auditor):
    record = make_send_record(
        outcome="failed", error_code=10017, error_info="sender is muted"
    )
    page = client_for(auditor).get(f"/audit/{record.pk}/", **ZH)
    assert page.status_code == 200
    assert "发送者已被禁言，无法发送消息。" in page.text  # derived from the code
    assert "sender is muted" in page.text  # the provider's own words, as stored
    assert "服务商应答" in page.text
    record.refresh_from_db()
    assert record.error_info == "sender is muted"


def test_it_shows_the_batch_page_in_korean(manager):
    batch = make_batch(actor=manager, rooms=["room-1", "room-2", "room-3"])
    page = client_for(manager).get(f"/batches/{batch.pk}/", **KO)
    assert page.status_code == 200
    assert f"일괄 발송 {batch.pk}: 룸 텍스트 메시지" in page.text
    # Data the page's tests and scripts key on stays as it was.
    assert 'data-count="waiting"' in page.text


def test_it_shows_the_audit_list_in_chinese(auditor):
    make_send_record()
    page = client_for(auditor).get("/audit/", **ZH)
    assert page.status_code == 200
    assert "<h1>发送记录</h1>" in page.text
    assert "下载 CSV" in page.text


def test_it_says_app_messages_in_korean(admin_user):
    page = client_for(admin_user).post(
        "/apps/new/",
        {
            "name": "live",
            "provider": "tencent",
            "app_id": "x1",
            "region": "singapore",
            "identifier": "administrator",
            "secret_key": "s3cret",
        },
        **KO,
    )
    assert page.status_code == 200
    assert "SDKAppID는 숫자로만 입력해야 합니다." in page.text
    assert "보안을 위해 입력한 키은(는)" in page.text


def test_sendmsg_prose_is_translated_but_its_json_stays_english():
    make_user("cli-manager", role=Role.MANAGER)
    make_app(name="live")
    args = ["text", "--app", "nope", "--as", "cli-manager", "--room", "r", "--sender"]
    with translation.override("zh-hans"), pytest.raises(CommandError) as exc:
        call_command("sendmsg", *args, "host", "--text", "hi", stdout=io.StringIO())
    assert str(exc.value) == "--app：没有名为 'nope' 的应用（现有应用：live）"


def test_sendmsg_json_lines_stay_english_in_another_language(server):
    make_user("cli-manager", role=Role.MANAGER)
    server.answer(
        {
            "ActionStatus": "FAIL",
            "ErrorCode": 10017,
            "ErrorInfo": "muted",
            "RequestId": "Id-1",
        }
    )
    make_app(name="live", base_url=server.url)
    out = io.StringIO()
    with translation.override("ko"), pytest.raises(CommandError) as exc:
        call_command(
            "sendmsg",
            *["text", "--app", "live", "--as", "cli-manager", "--room", "r"],
            *["--sender", "host", "--text", "hi"],
            stdout=out,
        )
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["explanation"] == "The sender is muted and cannot send messages."
    assert str(exc.value) == "발송 1건 중 1건이 성공하지 못했습니다"


def test_command_help_is_in_the_readers_language():
    from messaging.management.commands.auditlog import Command

    with translation.override("zh-hans"):
        text = Command().create_parser("manage.py", "auditlog").format_help()
    assert "读取并证明发送记录。" in text
    text = Command().create_parser("manage.py", "auditlog").format_help()
    assert "Read and prove the send log." in text


def test_it_shows_stored_pause_reasons_translated_and_keeps_them_english(manager):
    from messaging import stored_text
    from messaging.models import Batch, BatchStatus

    batch = make_batch(actor=manager)
    reason = stored_text.PAUSED_AFTER_FAILURES.format(
        threshold=5,
        code=" 10017",
        last="The sender is muted and cannot send messages.",
    )
    Batch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.PAUSED, pause_reason=reason
    )
    page = client_for(manager).get(f"/batches/{batch.pk}/", **ZH)
    assert (
        "服务商连续 5 次失败且重试无法解决，已自动暂停。最后一次错误 10017："
        "发送者已被禁言，无法发送消息。 请排除原因后恢复。"
    ) in page.text
    batch.refresh_from_db()
    assert batch.pause_reason == reason
    translation.activate("en")
    assert stored_text.display(reason) == reason
    assert stored_text.display("Paused by somebody else, for fun") == (
        "Paused by somebody else, for fun"
    )


def test_a_cancelled_rooms_info_is_explained_in_korean(manager, auditor):
    from messaging.services import batches

    batch = make_batch(actor=manager, rooms=["room-1"])
    batches.cancel(batch, actor=manager)
    record = batch.records.get()
    assert (
        record.error_info
        == f"Cancelled by {manager.get_username()} before it was sent."
    )
    page = client_for(auditor).get(f"/audit/{record.pk}/", **KO)
    assert f"{manager.get_username()}님이 발송 전에 취소했습니다." in page.text


def test_a_broken_chain_is_explained_in_chinese_and_stored_in_english():
    from messaging import stored_text

    problem = stored_text.CHAIN_SEND_CHANGED.format(record=7, seq=3)
    assert problem.startswith("send 7 (link #3) does not match its link")
    with translation.override("zh-hans"):
        assert stored_text.display(problem) == (
            "发送 7（链接 #3）与其链接不符：它已被修改，或在此处有发送被插入、删除或重排"
        )
