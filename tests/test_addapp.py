from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from messaging.models import ProviderApp

pytestmark = pytest.mark.django_db


def run(*args: str, stdin: str = "") -> dict:
    out = io.StringIO()
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command("addapp", *args, stdout=out)
    finally:
        sys.stdin = old
    return json.loads(out.getvalue())


ARGS = [
    "live",
    "--provider",
    "tencent",
    "--app-id",
    "1400000777",
    "--region",
    "Singapore",
    "--identifier",
    "admin",
]


def test_it_creates_an_app_from_stdin_secret():
    result = run(*ARGS, stdin="key-from-stdin\n")
    assert result["ok"] is True
    assert result["created"] is True
    assert result["region"] == "singapore"
    assert result["api_base_url"] == "https://adminapisgp.im.qcloud.com"
    app = ProviderApp.objects.get(name="live")
    assert app.secret_key == "key-from-stdin"
    assert "key-from-stdin" not in json.dumps(result)


def test_it_reads_the_secret_from_the_environment(monkeypatch):
    monkeypatch.setenv("LIVEADMIN_SECRET", "key-from-env")
    monkeypatch.setenv("HOOK_TOKEN", "token-from-env")
    result = run(
        *ARGS,
        "--base-url",
        "http://127.0.0.1:9/sandbox",
        "--webhook-token-env",
        "HOOK_TOKEN",
    )
    app = ProviderApp.objects.get(name="live")
    assert app.secret_key == "key-from-env"
    assert app.webhook_token == "token-from-env"
    assert result["webhook_token"] is True
    assert result["api_base_url"] == "http://127.0.0.1:9/sandbox"


def test_it_updates_an_existing_app_and_keeps_its_secret():
    run(*ARGS, stdin="first-key")
    result = run(
        "live",
        "--provider",
        "tencent",
        "--app-id",
        "1400000777",
        "--region",
        "china",
        "--identifier",
        "admin2",
    )
    assert result["created"] is False
    app = ProviderApp.objects.get(name="live")
    assert (app.region, app.identifier, app.secret_key) == (
        "china",
        "admin2",
        "first-key",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "x",
                "--provider",
                "tencent",
                "--app-id",
                "abc",
                "--region",
                "china",
                "--identifier",
                "a",
            ],
            "app_id",
        ),
        (
            [
                "x",
                "--provider",
                "tencent",
                "--app-id",
                "1",
                "--region",
                "mars",
                "--identifier",
                "a",
            ],
            "region",
        ),
        (
            [
                "x",
                "--provider",
                "tencent",
                "--app-id",
                "1",
                "--region",
                "china",
                "--identifier",
                " ",
            ],
            "identifier",
        ),
        (
            [
                "x",
                "--provider",
                "tencent",
                "--app-id",
                "1",
                "--region",
                "china",
                "--identifier",
                "a",
                "--base-url",
                "ftp://h",
            ],
            "base_url",
        ),
    ],
)
def test_it_refuses_bad_input(args, message):
    with pytest.raises(CommandError, match=message) as info:
        run(*args, stdin="some-key")
    assert info.value.returncode == 2
    assert not ProviderApp.objects.exists()


def test_it_requires_a_secret_for_a_new_app():
    with pytest.raises(CommandError, match="LIVEADMIN_SECRET"):
        run(*ARGS, stdin="")
