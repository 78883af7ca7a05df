"""Check credentials: one harmless call to the sandbox provider, kept in the send log."""

from __future__ import annotations

import pytest

from messaging.models import SendRecord
from messaging.services.credentials import check_credentials
from tests.factories import make_app, make_sandbox_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sandboxed(live_server):
    def make(provider: str = "tencent", *, wrong_secret: bool = False, **fields):
        base = live_server.url + (
            "/sandbox" if provider == "tencent" else "/sandbox/zego"
        )
        app = make_app(provider=provider, base_url=base, **fields)
        make_sandbox_app(app)
        if wrong_secret:
            app.secret_key = "not-the-secret-the-provider-has-0000"
            app.save()
        return app

    return make


@pytest.mark.parametrize("provider", ["tencent", "zego"])
def test_it_accepts_working_credentials_and_logs_the_check(
    sandboxed, admin_user, provider
):
    app = sandboxed(provider)
    result = check_credentials(app, actor=admin_user)
    assert result.verdict == "accepted", (result.error_code, result.error_info)
    assert result.error_code in {100004, 50001}
    row = SendRecord.objects.get(pk=result.record.pk)
    assert (row.kind, row.outcome, row.user, row.app) == (
        "check",
        "ok",
        admin_user,
        app,
    )
    assert row.room_id.startswith("liveadmin-check-")
    assert row.error_code == result.error_code and row.response_body


@pytest.mark.parametrize("provider", ["tencent", "zego"])
def test_it_reports_refused_credentials_with_the_code_and_a_hint(
    sandboxed, admin_user, provider
):
    app = sandboxed(provider, wrong_secret=True)
    result = check_credentials(app, actor=admin_user)
    assert result.verdict == "refused", (result.error_code, result.error_info)
    assert result.error_code in {70009, 100000005}
    assert "secret" in result.hint and result.explanation
    row = SendRecord.objects.get(pk=result.record.pk)
    assert (row.kind, row.outcome, row.error_code) == (
        "check",
        "failed",
        result.error_code,
    )


def test_it_says_when_the_provider_cannot_be_reached(admin_user):
    app = make_app(base_url="http://127.0.0.1:9/sandbox")
    result = check_credentials(app, actor=admin_user)
    assert result.verdict == "inconclusive"
    assert SendRecord.objects.get(pk=result.record.pk).outcome == "failed"


def _addapp(*args: str, secret: str) -> tuple[list[dict], int]:
    import io
    import json
    import os

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    os.environ["LIVEADMIN_SECRET"] = secret
    code = 0
    try:
        call_command("addapp", *args, stdout=out)
    except CommandError as exc:
        code = exc.returncode
    finally:
        del os.environ["LIVEADMIN_SECRET"]
    return [json.loads(line) for line in out.getvalue().splitlines()], code


def test_addapp_checks_the_credentials_it_saved(live_server, admin_user):
    from messaging.models import ProviderApp

    args = [
        "checked",
        "--provider",
        "tencent",
        "--app-id",
        "1400000888",
        "--region",
        "singapore",
        "--identifier",
        "administrator",
        "--base-url",
        live_server.url + "/sandbox",
        "--check",
        "--as",
        admin_user.username,
    ]
    lines, code = _addapp(*args, secret="the-real-secret-0123456789")
    make_sandbox_app(ProviderApp.objects.get(name="checked"))
    # The app did not exist at the sandbox yet: the first check may not be accepted.
    lines, code = _addapp(*args, secret="the-real-secret-0123456789")
    assert code == 0 and lines[1]["check"] == "accepted" and lines[1]["ok"] is True
    assert SendRecord.objects.get(pk=lines[1]["record"]).kind == "check"
    lines, code = _addapp(*args, secret="a-wrong-secret-0123456789")
    assert code == 1
    assert (lines[1]["check"], lines[1]["error_code"]) == ("refused", 70009)


def test_addapp_check_needs_an_administrator(manager):
    lines, code = _addapp(
        "x",
        "--provider",
        "tencent",
        "--app-id",
        "1400000889",
        "--region",
        "singapore",
        "--identifier",
        "administrator",
        "--check",
        "--as",
        manager.username,
        secret="s-0123456789abcdef",
    )
    assert code == 2 and lines == []


def test_an_administrator_checks_credentials_from_the_app_list(sandboxed, admin_user):
    from django.urls import reverse

    from tests.conftest import client_for

    app = sandboxed("tencent", name="Checked from the page")
    response = client_for(admin_user).post(
        reverse("messaging:app-check", args=[app.pk]), follow=True
    )
    body = response.content.decode()
    assert "Credentials of “Checked from the page” accepted" in body
    assert "(code 100004)" in body
    assert (
        SendRecord.objects.filter(app=app, kind="check", user=admin_user).count() == 1
    )


def test_only_administrators_check_credentials(users, client):
    from django.urls import reverse

    from tests.conftest import client_for

    app = make_app()
    url = reverse("messaging:app-check", args=[app.pk])
    for name in ("manager", "moderator", "auditor", "outsider"):
        assert client_for(users[name]).post(url).status_code == 403
    assert client.post(url).status_code == 302
    assert client_for(users["admin"]).get(url).status_code == 405
    assert not SendRecord.objects.filter(kind="check").exists()
