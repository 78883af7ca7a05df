"""The `sandbox` management command and the demo data in the sandbox."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from messaging.models import ProviderApp
from messaging.sandbox.models import MutedMember, SandboxApp, SandboxRoom
from messaging.sandbox.services import store_message
from tests.factories import make_app

pytestmark = pytest.mark.django_db


def run(*args: str) -> list[dict]:
    out = io.StringIO()
    call_command("sandbox", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_it_mirrors_a_dashboard_app(db):
    app = make_app(name="main", identifier="administrator", webhook_token="tok-1")
    [line] = run("app", "sync", "--app", "main", "--room", "r1", "--room", "r2")
    assert line == {
        "ok": True,
        "app": "main",
        "provider": "tencent",
        "app_id": app.app_id,
        "admins": ["administrator"],
        "callback_url": "(this site's /webhooks/tencent)",
        "callback_token": True,
        "failure_policy": "deliver",
        "rooms": ["r1", "r2"],
    }
    sandbox = SandboxApp.objects.get()
    assert (sandbox.secret, sandbox.callback_token) == (app.secret_key, "tok-1")
    # Syncing again after a key rotation updates the copy, and keeps the rooms.
    ProviderApp.objects.filter(pk=app.pk).update(identifier="admin2")
    app.refresh_from_db()
    app.secret_key = "rotated-secret"
    app.save()
    [line] = run("app", "sync", "--app", "main", "--failure-policy", "reject")
    sandbox.refresh_from_db()
    assert (sandbox.secret, sandbox.admins, sandbox.failure_policy) == (
        "rotated-secret",
        ["admin2"],
        "reject",
    )
    assert line["rooms"] == ["r1", "r2"]


def test_it_creates_lists_and_destroys_rooms(db):
    make_app(name="main")
    run("app", "sync", "--app", "main")
    assert run("room", "create", "--app", "main", "lobby") == [
        {"ok": True, "app": "main", "room": "lobby", "live": True}
    ]
    run("room", "create", "--app", "main", "chat", "--not-live")
    run(
        "member", "mute", "--app", "main", "--room", "lobby", "host1", "--seconds", "60"
    )
    room = SandboxRoom.objects.get(room_id="lobby")
    store_message(
        room,
        kind="text",
        sender="host1",
        msg_body=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}],
    )
    assert run("room", "list", "--app", "main") == [
        {"room": "chat", "live": False, "last_msg_seq": 0, "muted": []},
        {"room": "lobby", "live": True, "last_msg_seq": 1, "muted": ["host1"]},
    ]
    [message] = run("messages", "--app", "main", "--room", "lobby")
    assert (message["msg_seq"], message["sender"], message["kind"]) == (
        1,
        "host1",
        "text",
    )
    run("member", "unmute", "--app", "main", "--room", "lobby", "host1")
    assert not MutedMember.objects.exists()
    run("room", "destroy", "--app", "main", "chat")
    assert list(SandboxRoom.objects.values_list("room_id", flat=True)) == ["lobby"]


@pytest.mark.parametrize(
    "args",
    [
        ("room", "create", "--app", "nope", "r1"),
        ("room", "create", "--app", "unsynced", "r1"),
        ("room", "create", "--app", "main", "bad room"),
        ("room", "create", "--app", "main", "@TGS#abc"),
        ("member", "mute", "--app", "main", "--room", "missing", "host1"),
        ("member", "mute", "--app", "main", "--room", "r1", "host1", "--seconds", "-1"),
        ("messages", "--app", "main", "--room", "missing"),
    ],
)
def test_it_exits_2_on_bad_input(db, args):
    make_app(name="main")
    make_app(name="unsynced")
    run("app", "sync", "--app", "main", "--room", "r1")
    with pytest.raises(CommandError) as excinfo:
        run(*args)
    assert excinfo.value.returncode == 2
    assert SandboxRoom.objects.count() == 1
    assert not MutedMember.objects.exists()


def test_it_seeds_the_demo_apps_into_the_sandbox_idempotently(db):
    for _ in range(2):
        call_command("seed_demo", stdout=io.StringIO())
    apps = {a.provider: a for a in SandboxApp.objects.all()}
    assert set(apps) == {"tencent", "zego"}
    for provider, sandbox in apps.items():
        dashboard = ProviderApp.objects.get(provider=provider)
        assert sandbox.app_id == dashboard.app_id
        assert sandbox.secret == dashboard.secret_key
        assert sandbox.admins == [dashboard.identifier]
        assert list(sandbox.rooms.values_list("room_id", flat=True)) == [
            "demo-room",
            "demo-room-2",
            "lobby",
        ]
