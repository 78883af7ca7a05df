"""The sandbox rooms page: rooms per app, what a room received, create room, mute."""

from __future__ import annotations

import pytest
from django.urls import reverse

from messaging.sandbox.models import MutedMember, SandboxRoom
from messaging.sandbox.services import mute_member, store_message
from tests.conftest import client_for
from tests.factories import make_app, make_sandbox_app

pytestmark = pytest.mark.django_db

ROOMS = reverse("sandbox:rooms")


@pytest.fixture
def sandbox():
    app = make_app(name="Main app", identifier="administrator")
    return make_sandbox_app(app, rooms=("room-1", "room-2"))


def deliver(room: SandboxRoom, text: str, sender: str = "host1", **extra) -> None:
    store_message(
        room,
        kind="text",
        sender=sender,
        msg_body=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}],
        **extra,
    )


def test_it_lists_the_rooms_of_each_app(moderator, sandbox):
    response = client_for(moderator).get(ROOMS)
    assert response.status_code == 200
    body = response.content.decode()
    assert f"Main app (tencent {sandbox.app_id})" in body
    assert "room-1" in body and "room-2" in body
    assert "Pick a room" in body


def test_it_shows_what_a_room_received_newest_first(moderator, sandbox):
    room = sandbox.rooms.get(room_id="room-1")
    deliver(room, "first message")
    deliver(room, "second message", cloud_custom_data='{"level":3}')
    store_message(
        room,
        kind="custom",
        sender="administrator",
        msg_body=[
            {
                "MsgType": "TIMCustomElem",
                "MsgContent": {"Data": '{"BusinessId":"gift","Data":"rose"}'},
            }
        ],
    )
    deliver(sandbox.rooms.get(room_id="room-2"), "elsewhere")
    body = client_for(moderator).get(ROOMS, {"room": room.pk}).content.decode()
    custom = body.index(
        "[custom] {&quot;BusinessId&quot;:&quot;gift&quot;,&quot;Data&quot;:&quot;rose&quot;}"
    )
    assert custom < body.index("second message") < body.index("first message")
    assert "CloudCustomData: {&quot;level&quot;:3}" in body
    assert "elsewhere" not in body
    assert 'id="msg-3"' in body


def test_it_escapes_what_senders_wrote(admin_user, sandbox):
    room = sandbox.rooms.get(room_id="room-1")
    deliver(room, "<script>alert(1)</script>")
    body = client_for(admin_user).get(ROOMS, {"room": room.pk}).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_it_answers_htmx_polls_with_the_messages_fragment(moderator, sandbox):
    room = sandbox.rooms.get(room_id="room-1")
    deliver(room, "live update")
    response = client_for(moderator).get(
        ROOMS, {"room": room.pk}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="room-messages"')
    assert "live update" in body
    assert "<html" not in body
    assert "HX-Request" in response["Vary"]


def test_it_404s_for_an_unknown_room(manager, sandbox):
    assert client_for(manager).get(ROOMS, {"room": 999999}).status_code == 404


def test_it_creates_a_room(admin_user, sandbox):
    response = client_for(admin_user).post(
        reverse("sandbox:room-create"),
        {"app": sandbox.pk, "room_id": " new-room ", "live": "on"},
    )
    room = SandboxRoom.objects.get(app=sandbox, room_id="new-room")
    assert response.status_code == 302
    assert response["Location"] == f"{ROOMS}?room={room.pk}"
    assert room.live and room.last_msg_seq == 0


def test_it_keeps_typed_values_when_the_room_id_is_bad(admin_user, sandbox):
    response = client_for(admin_user).post(
        reverse("sandbox:room-create"), {"app": sandbox.pk, "room_id": "salle-été"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "A room ID uses printable ASCII characters only." in body
    assert 'value="salle-été"' in body
    assert SandboxRoom.objects.count() == 2


def test_it_refuses_a_room_that_exists(admin_user, sandbox):
    response = client_for(admin_user).post(
        reverse("sandbox:room-create"),
        {"app": sandbox.pk, "room_id": "room-1", "live": "on"},
    )
    assert response.status_code == 200
    assert "This app already has a room with this ID." in response.content.decode()


def test_it_mutes_and_unmutes_a_member(admin_user, sandbox):
    room = sandbox.rooms.get(room_id="room-1")
    client = client_for(admin_user)
    url = reverse("sandbox:room-mute", args=[room.pk])
    response = client.post(url, {"account": "host1", "seconds": "600"})
    assert response.status_code == 302
    muted = MutedMember.objects.get(room=room, account="host1")
    body = client.get(ROOMS, {"room": room.pk}).content.decode()
    assert "host1</span> until" in body
    client.post(url, {"account": "host1", "seconds": "0"})
    assert not MutedMember.objects.exists()
    muted = mute_member(sandbox, "room-1", "host2", 60)
    response = client.post(reverse("sandbox:room-unmute", args=[room.pk, muted.pk]))
    assert response.status_code == 302
    assert not MutedMember.objects.exists()


def test_it_keeps_typed_values_when_the_mute_is_bad(admin_user, sandbox):
    room = sandbox.rooms.get(room_id="room-1")
    response = client_for(admin_user).post(
        reverse("sandbox:room-mute", args=[room.pk]),
        {"account": "user-" + "x" * 40, "seconds": "-5"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "A user ID is at most 32 bytes." in body
    assert "Ensure this value is greater than or equal to 0." in body
    assert f'value="user-{"x" * 40}"' in body
    assert 'value="-5"' in body
    assert not MutedMember.objects.exists()


def test_it_forbids_auditors_and_outsiders(auditor, outsider, sandbox):
    room = sandbox.rooms.get(room_id="room-1")
    for user in (auditor, outsider):
        client = client_for(user)
        assert client.get(ROOMS).status_code == 403
        response = client.post(
            reverse("sandbox:room-mute", args=[room.pk]),
            {"account": "a", "seconds": "9"},
        )
        assert response.status_code == 403
    assert not MutedMember.objects.exists()


def test_it_sends_anonymous_users_to_login(client, sandbox):
    response = client.get(ROOMS)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_filters_and_caps_the_room_list(moderator, sandbox):
    from messaging.sandbox import views
    from messaging.sandbox.models import SandboxRoom as Room

    Room.objects.bulk_create(
        Room(app=sandbox, room_id=f"bulk-{i:03}") for i in range(205)
    )
    client = client_for(moderator)
    body = client.get(ROOMS).content.decode()
    assert (
        body.count('class="mono">bulk-') + body.count('class="mono">room-')
        == views.ROOMS_SHOWN
    )
    assert "and 7 more: use the filter" in body
    body = client.get(ROOMS, {"q": "room-"}).content.decode()
    assert "room-1" in body and "room-2" in body and "bulk-000" not in body
    assert 'value="room-"' in body
    body = client.get(ROOMS, {"q": "nothing-like-this"}).content.decode()
    assert "no room matches" in body


def test_it_lets_administrators_add_a_dashboard_app_to_the_sandbox(admin_user):
    from messaging.sandbox.models import SandboxApp

    app = make_app(name="New app", identifier="boss", webhook_token="tok")
    client = client_for(admin_user)
    assert "Add a dashboard app to the sandbox" in client.get(ROOMS).content.decode()
    response = client.post(
        reverse("sandbox:app-mirror"), {"app": app.pk, "rooms": "lobby, stage-1"}
    )
    assert response.status_code == 302
    sandbox = SandboxApp.objects.get(app_id=app.app_id)
    assert (sandbox.secret, sandbox.admins, sandbox.callback_token) == (
        app.secret_key,
        ["boss"],
        "tok",
    )
    assert list(sandbox.rooms.values_list("room_id", flat=True)) == ["lobby", "stage-1"]


def test_it_keeps_typed_rooms_when_one_is_bad(admin_user):
    app = make_app(name="New app")
    response = client_for(admin_user).post(
        reverse("sandbox:app-mirror"), {"app": app.pk, "rooms": "lobby, salle-été"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert (
        "&#x27;salle-été&#x27;: A room ID uses printable ASCII characters only." in body
    )
    assert 'value="lobby, salle-été"' in body
    assert not SandboxRoom.objects.exists()


def test_it_lets_only_administrators_mirror_apps(manager, moderator, sandbox):
    app = make_app(name="New app")
    for user in (manager, moderator):
        client = client_for(user)
        assert (
            "Add a dashboard app to the sandbox"
            not in client.get(ROOMS).content.decode()
        )
        response = client.post(reverse("sandbox:app-mirror"), {"app": app.pk})
        assert response.status_code == 403
