"""The language of the pages: the browser's until a person picks one, then theirs."""

from __future__ import annotations

import pytest

from liveadmin.models import LanguagePreference
from liveadmin.roles import Role
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_pages_follow_the_browser_language(client):
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="ko-KR,ko;q=0.9")
    assert '<html lang="ko">' in page.text
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    assert '<html lang="zh-hans">' in page.text
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="fr-FR")
    assert '<html lang="en">' in page.text


def test_a_picked_language_wins_over_the_browser_and_is_kept_for_the_user(client):
    user = make_user("manager1", role=Role.MANAGER)
    client.force_login(user)
    answer = client.post("/language/", {"language": "ko", "next": "/audit/"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/audit/"
    assert LanguagePreference.objects.get(user=user).language == "ko"
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en-US")
    assert '<html lang="ko">' in page.text
    assert "로그아웃" in page.text

    client.logout()
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert '<html lang="zh-hans">' in page.text  # signed out: the browser again
    client.post(
        "/accounts/login/",
        {"username": "manager1", "password": PASSWORD},
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert '<html lang="ko">' in page.text  # signed in: the saved choice


def test_an_unknown_language_or_a_foreign_next_changes_nothing(client):
    user = make_user("manager1", role=Role.MANAGER)
    client.force_login(user)
    answer = client.post(
        "/language/", {"language": "xx", "next": "https://evil.example/"}
    )
    assert answer.headers["Location"] == "/"
    assert not LanguagePreference.objects.filter(user=user).exists()
    assert client.get("/language/").status_code == 405
