"""What the batch pages say and offer (issue 10 point 6): a cancel that asks first and
says how many rooms it stops, the cancelled and unknown outcomes, truthful
messages, a test send to one room from the preview, the message as labelled
fields, and Pause next to Cancel."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from messaging.models import Batch, BatchStatus, Outcome, SendRecord
from tests.conftest import client_for
from tests.factories import make_app, make_batch
from tests.recording_server import recording_server

pytestmark = pytest.mark.django_db

OK = {
    "ActionStatus": "OK",
    "ErrorCode": 0,
    "ErrorInfo": "",
    "RequestId": "Id-test-1",
    "Response": {"MsgSeq": 4, "MsgTime": 1700000000, "MsgDropReason": ""},
}


@pytest.fixture
def server():
    yield from recording_server()


def test_it_asks_before_cancelling_and_says_how_many_rooms_it_stops(manager):
    batch = make_batch(actor=manager, rooms=["a", "b", "c"])
    SendRecord.objects.filter(batch=batch, room_id="a").update(outcome=Outcome.OK)
    client = client_for(manager)
    confirm = client.get(reverse("messaging:batch-cancel", args=[batch.pk]))
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "2 rooms will not be sent." in text
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING  # asking changed nothing
    done = client.post(reverse("messaging:batch-cancel", args=[batch.pk]), follow=True)
    assert "Batch cancelled: 2 rooms will not be sent." in done.content.decode()
    assert sorted(batch.records.values_list("room_id", "outcome")) == [
        ("a", Outcome.OK),
        ("b", Outcome.CANCELLED),
        ("c", Outcome.CANCELLED),
    ]
    page = done.content.decode()
    assert re.search(r'data-count="cancelled">2<', page)


def test_it_shows_the_message_as_labelled_fields_and_pause_beside_cancel(manager):
    batch = make_batch(
        actor=manager,
        rooms=["a"],
        fields={"sender": "host-1", "text": "Hello rooms", "extension_info": ""},
    )
    page = client_for(manager).get(reverse("messaging:batch-detail", args=[batch.pk]))
    body = page.content.decode()
    message = body.split('id="batch-message"')[1].split("</dl>")[0]
    assert "<dt>Sender account</dt>" in message
    assert "<dt>Text</dt>" in message and "Hello rooms" in message
    assert "Extension info" not in message  # empty fields are left out
    actions = body.split('class="form-actions"')[1].split("</div>")[0]
    assert actions.index(">Pause<") < actions.index("Cancel…")
    assert ">Approve" not in actions


def test_it_offers_the_unknown_rooms_for_an_explicit_resend(manager):
    batch = make_batch(actor=manager, rooms=["a", "b", "c"])
    SendRecord.objects.filter(batch=batch, room_id="a").update(outcome=Outcome.OK)
    SendRecord.objects.filter(batch=batch, room_id__in=["b", "c"]).update(
        outcome=Outcome.UNKNOWN, error_info="ReadTimeout: no answer"
    )
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.DONE)
    client = client_for(manager)
    page = client.get(reverse("messaging:batch-detail", args=[batch.pk]))
    body = page.content.decode()
    assert "Re-send the 2 unknown rooms" in body
    assert 'id="unknown-explained"' in body
    done = client.post(
        reverse("messaging:batch-resend-unknown", args=[batch.pk]), follow=True
    )
    again = Batch.objects.get(resend_of=batch)
    assert sorted(again.records.values_list("room_id", flat=True)) == ["b", "c"]
    assert "Re-sending the 2 rooms whose delivery was unknown" in done.content.decode()


def test_it_says_a_broadcast_was_submitted_for_approval(manager):
    app = make_app(broadcast_requires_approval=True)
    data = {
        "app": app.pk,
        "kind": "broadcast",
        "text": "Maintenance at 02:00",
        "random": "12345",
        "action": "confirm",
    }
    response = client_for(manager).post(reverse("messaging:send"), data, follow=True)
    body = response.content.decode()
    assert "Broadcast submitted for approval" in body
    assert "started" not in body.split('class="flash')[1].split("</")[0]


def test_it_sends_a_test_to_one_room_from_the_preview(manager, server):
    server.always(OK)
    app = make_app(base_url=server.url)
    data = {
        "app": app.pk,
        "kind": "text",
        "rooms": "room-1\nroom-2\nroom-3",
        "sender": "host-1",
        "text": "Hello rooms",
        "test_room": "qa-room",
        "action": "test",
    }
    response = client_for(manager).post(reverse("messaging:send"), data)
    assert response.status_code == 200
    assert response.context["step"] == "preview"  # still before the batch
    assert response.context["test_result"].ok
    (received,) = server.received
    assert received.json() == {
        "RoomId": "qa-room",
        "Sender_Account": "host-1",
        "TextContent": "Hello rooms",
    }
    assert 'id="test-result"' in response.content.decode()
    assert not Batch.objects.exists()
    record = SendRecord.objects.get()
    assert (record.room_id, record.outcome, record.batch) == ("qa-room", "ok", None)


def test_it_refuses_a_bad_test_room_and_keeps_the_preview(manager, server):
    app = make_app(base_url=server.url)
    data = {
        "app": app.pk,
        "kind": "text",
        "rooms": "room-1\nroom-2",
        "sender": "host-1",
        "text": "Hello rooms",
        "test_room": "r" * 60,
        "action": "test",
    }
    response = client_for(manager).post(reverse("messaging:send"), data)
    assert response.context["step"] == "preview"
    assert response.context["test_error"] == "A room ID is at most 48 bytes."
    assert response.context["test_room"] == "r" * 60
    assert server.received == []
    assert not SendRecord.objects.exists()


def test_it_lets_an_administrator_switch_an_app_to_at_least_once(admin_user):
    app = make_app(name="Live app")
    page = client_for(admin_user).get(reverse("messaging:app-edit", args=[app.pk]))
    assert 'name="at_least_once"' in page.content.decode()
    data = {
        "name": "Live app",
        "provider": "tencent",
        "app_id": str(app.app_id),
        "region": "singapore",
        "identifier": "administrator",
        "secret_key": "",
        "webhook_token": "",
        "base_url": "",
        "rate_limit": "",
        "at_least_once": "on",
    }
    response = client_for(admin_user).post(
        reverse("messaging:app-edit", args=[app.pk]), data
    )
    assert response.status_code == 302
    app.refresh_from_db()
    assert app.at_least_once is True
