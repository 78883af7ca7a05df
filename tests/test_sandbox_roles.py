"""The sandbox follows the roles: managers see the sandbox messages of their own
sends, moderators read every room, only administrators change rooms and members."""

from __future__ import annotations

import pytest
from django.urls import reverse

from liveadmin.roles import Role
from messaging.sandbox.models import MutedMember, SandboxRoom
from messaging.sandbox.services import mute_member, store_message
from tests.conftest import client_for
from tests.factories import make_app, make_sandbox_app, make_send_record, make_user

pytestmark = pytest.mark.django_db

ROOMS = reverse("sandbox:rooms")


@pytest.fixture
def world(manager):
    """Two managers' sends delivered to one room, and one room only the second used."""
    app = make_app(name="Main app", identifier="administrator")
    sandbox = make_sandbox_app(app, rooms=("room-1", "room-2", "room-3"))
    other = make_user("manager2", role=Role.MANAGER)
    room1 = sandbox.rooms.get(room_id="room-1")
    room2 = sandbox.rooms.get(room_id="room-2")
    for user, room, text, request_id in [
        (manager, room1, "first manager's text", "Id-mine"),
        (other, room1, "second manager's secret text", "Id-theirs"),
        (other, room2, "only theirs here", "Id-theirs-2"),
    ]:
        make_send_record(
            app=app, user=user, room_id=room.room_id, request_id=request_id
        )
        store_message(
            room,
            kind="text",
            sender="host1",
            msg_body=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}],
            request_id=request_id,
        )
    store_message(  # sent by someone outside LiveAdmin (the app's own users)
        room1,
        kind="text",
        sender="viewer",
        msg_body=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": "audience chat"}}],
        request_id="",
    )
    return {"room1": room1, "room2": room2, "other": other}


def test_a_manager_sees_only_the_messages_of_their_own_sends(manager, world):
    client = client_for(manager)
    body = client.get(ROOMS).content.decode()
    assert "room-1" in body and "room-2" not in body and "room-3" not in body
    body = client.get(ROOMS, {"room": world["room1"].pk}).content.decode()
    assert "first manager&#x27;s text" in body
    assert "secret text" not in body and "audience chat" not in body
    poll = client.get(
        ROOMS, {"room": world["room1"].pk}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "first manager&#x27;s text" in poll and "secret text" not in poll
    assert client.get(ROOMS, {"room": world["room2"].pk}).status_code == 404
    # The other manager sees theirs, not the first one's.
    body = (
        client_for(world["other"])
        .get(ROOMS, {"room": world["room1"].pk})
        .content.decode()
    )
    assert "secret text" in body and "first manager" not in body


def test_a_moderator_reads_every_room(moderator, world):
    body = (
        client_for(moderator).get(ROOMS, {"room": world["room1"].pk}).content.decode()
    )
    for text in ["first manager&#x27;s text", "secret text", "audience chat"]:
        assert text in body
    assert 'id="room-create"' not in body and 'id="room-mute"' not in body


@pytest.mark.parametrize("role", ["manager", "moderator"])
def test_only_administrators_change_rooms_and_members(users, world, role):
    client = client_for(users[role])
    room = world["room1"]
    response = client.post(
        reverse("sandbox:room-create"),
        {"app": room.app.pk, "room_id": "new", "live": "on"},
    )
    assert response.status_code == 403
    response = client.post(
        reverse("sandbox:room-mute", args=[room.pk]), {"account": "u1", "seconds": 60}
    )
    assert response.status_code == 403
    mute_member(room.app, room.room_id, "u2", 60)
    muted = MutedMember.objects.get(account="u2")
    response = client.post(reverse("sandbox:room-unmute", args=[room.pk, muted.pk]))
    assert response.status_code == 403
    assert not SandboxRoom.objects.filter(room_id="new").exists()
    assert list(MutedMember.objects.values_list("account", flat=True)) == ["u2"]


def test_administrators_see_the_forms(admin_user, world):
    body = (
        client_for(admin_user).get(ROOMS, {"room": world["room1"].pk}).content.decode()
    )
    assert 'id="room-create"' in body and 'id="room-mute"' in body
    assert "secret text" in body
