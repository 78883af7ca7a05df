"""The moderation pages and commands in Korean and Chinese; what machines read stays English."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import translation

from tests.conftest import client_for
from tests.factories import make_app
from tests.webhook_support import post_webhook, text_body, webhook_url
from webhooks import moderation, services
from webhooks.models import Decision
from webhooks.recorder import recorder

pytestmark = pytest.mark.django_db

KO = {"HTTP_ACCEPT_LANGUAGE": "ko-KR,ko;q=0.9"}
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}


@pytest.fixture
def app(db):
    return make_app(name="live")


@pytest.fixture
def blocklist(db):
    return services.create_list("Main", app=None)


def test_the_blocklist_pages_speak_korean(moderator, blocklist):
    services.add_entry(blocklist, term="spam", action="mask")
    client = client_for(moderator)
    html = client.get(reverse("webhooks:blocklist-list"), **KO).text
    assert "<h1>차단 목록</h1>" in html
    assert "목록 만들기" in html and "Create list" not in html
    html = client.get(
        reverse("webhooks:blocklist-detail", args=[blocklist.pk]), **KO
    ).text
    # The kind and action labels come from the vocabulary, translated when shown.
    assert "단어 또는 구문" in html and "별표로 마스킹" in html
    assert "Word or phrase" not in html


def test_an_entry_error_comes_back_in_chinese_with_the_typed_values(
    moderator, blocklist
):
    html = (
        client_for(moderator)
        .post(
            reverse("webhooks:entry-create", args=[blocklist.pk]),
            {"kind": "word", "term": "typed", "action": "forbid_code", "code": "5"},
            **ZH,
        )
        .text
    )
    assert "错误码必须在 10100 到 10200 之间（文档规定的范围）。" in html
    assert 'value="typed"' in html


def test_the_decision_log_names_verdicts_in_korean_and_keeps_its_keys(
    moderator, blocklist, app
):
    services.add_entry(blocklist, term="spam")
    post_webhook(Client(), webhook_url(app), text_body("spam", sender="bob"))
    recorder.flush()
    html = client_for(moderator).get(reverse("webhooks:decision-list"), **KO).text
    assert 'data-action="forbid">차단 1<' in html
    assert "<h1>메시지 발송 전 콜백 판정</h1>" in html
    assert "차단됨" in html  # the decision's action label
    # Stored data stays as stored.
    assert Decision.objects.get().action == "forbid"


def test_the_try_page_explains_the_verdict_in_chinese(moderator, blocklist, app):
    services.add_entry(blocklist, term="darn", action="mask")
    html = (
        client_for(moderator)
        .post(
            reverse("webhooks:try"),
            {"app": app.pk, "sender": "bob", "text": "oh darn"},
            headers={"HX-Request": "true"},
            **ZH,
        )
        .text
    )
    assert 'id="verdict">打码<' in html
    assert "将命中的文本替换为星号后投递。" in html
    # The webhook's JSON answer is shown exactly as the provider gets it.
    assert "&quot;ActionStatus&quot;: &quot;OK&quot;" in html


def test_a_mute_message_and_the_review_note_are_translated(moderator, app):
    client = client_for(moderator)
    answer = client.post(
        reverse("webhooks:sender-detail", args=[app.pk, "bob"]),
        {"minutes": "0", "scope": "app", "reason": ""},
        follow=True,
        **KO,
    )
    assert "bob을(를) 영구 채팅 금지했습니다." in answer.text


def test_command_prose_is_translated_and_its_json_lines_stay_english(app, tmp_path):
    with translation.override("ko"), pytest.raises(CommandError) as err:
        call_command("blocklist", "add", "--app", "nope", "--term", "x")
    assert str(err.value) == "'nope'(이)라는 앱이 없습니다"
    words = tmp_path / "words.csv"
    words.write_text("spam,word,forbid,abc\nfine\n", encoding="utf-8")
    out = StringIO()
    with translation.override("zh-hans"):
        call_command(
            "blocklist", "import", "--app", "live", "--file", str(words), stdout=out
        )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {
        "refused": {"line": 1, "term": "spam", "reason": "code must be a number"}
    }
    assert lines[-1]["added"] == 1


def test_the_english_pages_are_unchanged(moderator, blocklist):
    html = client_for(moderator).get(reverse("webhooks:blocklist-list")).text
    assert "<h1>Blocklists</h1>" in html and "Create list" in html


def test_a_stored_escalation_reason_is_shown_translated_and_kept_in_english(
    moderator, app
):
    sanction = moderation.mute_sender(
        app,
        "bob",
        minutes=10,
        reason="escalation: 3 hits within 60 s",
        source="escalation",
    )
    html = client_for(moderator).get(reverse("webhooks:sanction-list"), **ZH).text
    assert "升级：60 秒内命中 3 次" in html and "升级规则" in html
    html = client_for(moderator).get(reverse("webhooks:sanction-list")).text
    assert "escalation: 3 hits within 60 s" in html
    sanction.refresh_from_db()
    assert sanction.reason == "escalation: 3 hits within 60 s"
