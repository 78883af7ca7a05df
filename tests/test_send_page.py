"""The send page: app and kind switching (htmx), field errors, the preview of the
exact request body, many rooms, scheduling, and confirming (right away or a batch)."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from messaging.models import Batch, BatchStatus, SendRecord
from messaging.providers import explain
from tests.conftest import client_for
from tests.factories import make_app, make_sandbox_app
from tests.recording_server import recording_server

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def post(user, data, *, htmx=False, **extra):
    headers = HTMX if htmx else {}
    return client_for(user).post(reverse("messaging:send"), data, **headers, **extra)


def text_data(app, **overrides):
    data = {
        "app": app.pk,
        "kind": "text",
        "rooms": "room-1",
        "sender": "host-1",
        "text": "The show starts in 5 minutes",
        "extension_info": "",
    }
    data.update(overrides)
    return data


# --- picking an app and a kind --------------------------------------------------------


def test_it_lists_only_enabled_apps(manager):
    make_app(name="Live app")
    make_app(name="Old app", enabled=False)
    response = client_for(manager).get(reverse("messaging:send"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Live app" in body
    assert "Old app" not in body
    assert "Pick an app above" in body


def test_it_swaps_in_the_kinds_and_fields_of_a_tencent_app(manager):
    app = make_app(name="Tencent app")
    response = client_for(manager).get(
        reverse("messaging:send"), {"app": app.pk}, **HTMX
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="send-panel"')
    assert "<html" not in body
    assert "HX-Request" in response["Vary"]
    assert [k.label for k in response.context["kinds"]] == [
        "Room text message",
        "Room custom message",
        "Broadcast to all live rooms",
    ]
    form = response.context["form"]
    assert list(form.fields) == [
        "template",
        "rooms",
        "rooms_file",
        "sender",
        "text",
        "extension_info",
        "scheduled_at",
        "tz",
        "random",
    ]
    assert 'data-max-bytes="12288"' in body
    assert 'data-json="required"' in body
    assert form["sender"].value() == app.identifier


def test_it_shows_only_the_custom_command_for_a_zego_app(manager):
    app = make_app(provider="zego", name="Zego app")
    response = client_for(manager).get(
        reverse("messaging:send"), {"app": app.pk}, **HTMX
    )
    body = response.content.decode()
    assert [k.value for k in response.context["kinds"]] == ["command"]
    assert "Room text message" not in body
    assert 'name="room_id"' in body and 'name="to_users"' in body
    assert 'name="content"' in body and 'data-max-bytes="1024"' in body
    assert 'name="rooms"' not in body


def test_it_shows_the_fields_of_the_chosen_kind(manager):
    app = make_app()
    response = client_for(manager).get(
        reverse("messaging:send"), {"app": app.pk, "kind": "broadcast"}, **HTMX
    )
    form = response.context["form"]
    assert [
        n for n in form.fields if n not in ("template", "scheduled_at", "tz", "random")
    ] == [
        "from_account",
        "text",
        "custom_data",
        "cloud_custom_data",
    ]
    assert 'data-max-bytes="12000"' in response.content.decode()


def test_it_ignores_a_kind_the_provider_does_not_have(manager):
    app = make_app(provider="zego")
    response = client_for(manager).get(
        reverse("messaging:send"), {"app": app.pk, "kind": "text"}
    )
    assert response.context["kind"] == "command"


def test_it_refuses_a_disabled_app(manager):
    app = make_app(enabled=False)
    assert (
        client_for(manager).get(reverse("messaging:send"), {"app": app.pk}).status_code
        == 404
    )
    assert post(manager, text_data(app)).status_code == 404


def test_it_forbids_the_send_page_to_other_roles(
    moderator, auditor, admin_user, outsider
):
    app = make_app()
    for user in (moderator, auditor, admin_user, outsider):
        assert client_for(user).get(reverse("messaging:send")).status_code == 403
        assert post(user, text_data(app)).status_code == 403
    assert not SendRecord.objects.exists()


def test_it_sends_anonymous_users_to_login(client):
    response = client.get(reverse("messaging:send"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- bad input ----------------------------------------------------------------------


def test_it_shows_each_error_next_to_its_field_and_keeps_what_was_typed(manager):
    app = make_app()
    response = post(
        manager,
        text_data(app, rooms="room-1\nbad room", text="", extension_info="{not json"),
        htmx=True,
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert response.context["step"] == "form"
    assert set(form.errors) == {"rooms", "text", "extension_info"}
    assert form.errors["text"] == ["Enter the message text."]
    assert form.errors["extension_info"][0].startswith("Extension info must be JSON")
    assert "room IDs are printable ASCII" in form.errors["rooms"][0]
    body = response.content.decode()
    assert "room-1\nbad room</textarea>" in body
    assert "{not json</textarea>" in body
    assert 'value="host-1"' in body
    # Each error sits inside its field's block.
    text_block = body.split('id="field-text"')[1].split('id="field-extension_info"')[0]
    assert "Enter the message text." in text_block
    assert not SendRecord.objects.exists()


def test_it_shows_provider_limits_as_field_errors(manager):
    app = make_app(provider="zego")
    response = post(
        manager,
        {
            "app": app.pk,
            "kind": "command",
            "room_id": "room-1",
            "from_user": "admin",
            "to_users": ", ".join(f"u{i}" for i in range(11)),
            "content": "é" * 513,
        },
    )
    form = response.context["form"]
    assert form.errors["to_users"] == [
        "11 recipients; at most 10. Leave it empty to reach the whole room."
    ]
    assert form.errors["content"] == [
        "The content is 1,026 bytes; the limit is 1024 bytes."
    ]


def test_it_rejects_more_than_ten_thousand_rooms(manager):
    app = make_app()
    rooms = "\n".join(f"r{i}" for i in range(10_001))
    response = post(manager, text_data(app, rooms=rooms))
    assert response.context["form"].errors["rooms"] == [
        "At most 10,000 rooms per send; this list has 10,001. Split it."
    ]


def test_it_checks_every_room_id_against_the_provider_rules(manager):
    app = make_app()
    long_room = "r" * 60
    response = post(manager, text_data(app, rooms=f"room-1\n{long_room}"))
    errors = response.context["form"].errors["rooms"]
    # The list is parsed with the app's provider limit (messaging.rooms), so the
    # room list itself names the problem.
    assert errors == [
        f"1 room ID is not valid ({long_room[:40]}: A room ID is at most 48 bytes.)."
    ]


def test_it_refuses_a_time_in_the_past(manager):
    app = make_app()
    response = post(manager, text_data(app, scheduled_at="2020-01-01T10:00", tz="UTC"))
    assert response.context["form"].errors["scheduled_at"] == [
        "This time has passed. Pick a later time, or leave it empty to send now."
    ]


# --- preview ------------------------------------------------------------------------


def test_it_previews_the_exact_body_without_secrets(manager):
    app = make_app(secret_key="very-secret-key-123")
    response = post(manager, text_data(app, extension_info='{"data": 1}'), htmx=True)
    assert response.status_code == 200
    expected = {
        "RoomId": "room-1",
        "Sender_Account": "host-1",
        "TextContent": "The show starts in 5 minutes",
        "ExtensionInfo": '{"data": 1}',
    }
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="send-panel"')
    assert "Check and confirm" in body
    pre = body.split('<pre class="json" id="preview-body">')[1].split("</pre>")[0]
    assert json.loads(pre.replace("&quot;", '"').replace("&#x27;", "'")) == expected
    assert "very-secret-key-123" not in body
    assert "usersig=" not in body.lower()
    assert "Confirm and send" in body
    assert not SendRecord.objects.exists()


def test_it_reports_removed_duplicates_and_the_batch_duration(manager):
    app = make_app()
    response = post(manager, text_data(app, rooms="room-1\nroom-2\n\nroom-1\nroom-3\n"))
    assert response.context["plan"].rooms == ["room-1", "room-2", "room-3"]
    body = response.content.decode()
    assert "3 rooms" in body
    assert "removed 1 duplicate and 1 blank line" in body
    assert "3 rooms at 200/s: about 1 s" in body
    assert "Start sending" in body


def test_it_estimates_two_thousand_rooms_at_the_app_rate(manager):
    app = make_app()
    rooms = "\n".join(f"room-{i}" for i in range(2000))
    response = post(manager, text_data(app, rooms=rooms))
    assert response.context["estimate"] == "2,000 rooms at 200/s: about 10 s"
    slow = make_app(rate_limit=50)
    response = post(manager, text_data(slow, rooms=rooms))
    assert response.context["estimate"] == "2,000 rooms at 50/s: about 40 s"


def test_it_reads_room_ids_from_an_uploaded_csv(manager):
    app = make_app()
    upload = SimpleUploadedFile(
        "rooms.csv",
        b"room_id,name\nroom-7,Seven\nroom-8,Eight\nroom-7,again\n",
        "text/csv",
    )
    data = text_data(app, rooms="room-1")
    data["rooms_file"] = upload
    response = post(manager, data)
    assert response.context["plan"].rooms == ["room-1", "room-7", "room-8"]
    assert response.context["plan"].room_list.duplicates == ["room-7"]
    # The confirm form carries the cleaned list, not the file.
    assert ("rooms", "room-1\nroom-7\nroom-8") in response.context["carried"]


def test_it_refuses_a_file_that_is_not_text(manager):
    app = make_app()
    data = text_data(app, rooms="")
    data["rooms_file"] = SimpleUploadedFile(
        "rooms.txt", b"\xff\xfe\x00bad", "text/plain"
    )
    response = post(manager, data)
    assert response.context["form"].errors["rooms_file"] == [
        "The file must be UTF-8 text (TXT or CSV)."
    ]


def test_it_shows_upload_errors_under_the_upload_and_keeps_the_file(manager):
    app = make_app()
    data = text_data(app, rooms="")
    rooms = "\n".join(f"room-{i}" for i in range(10_001))
    data["rooms_file"] = SimpleUploadedFile("big.txt", rooms.encode(), "text/plain")
    response = post(manager, data)
    form = response.context["form"]
    assert "rooms" not in form.errors
    assert form.errors["rooms_file"] == [
        "At most 10,000 rooms per send; this list has 10,001. Split it."
    ]
    body = response.content.decode()
    assert "Kept: <strong>big.txt</strong>" in body
    # Submitting again without choosing the file uses the kept one.
    again = text_data(app, rooms="")
    again.update(rooms_kept="room-1\nroom-2", rooms_kept_name="big.txt")
    response = post(manager, again)
    assert response.context["plan"].rooms == ["room-1", "room-2"]


def test_it_shows_the_scheduled_time_in_the_users_time_zone(manager):
    app = make_app()
    tokyo = ZoneInfo("Asia/Tokyo")
    local = (
        (timezone.now() + timedelta(days=2))
        .astimezone(tokyo)
        .replace(second=0, microsecond=0)
    )
    response = post(
        manager,
        text_data(app, scheduled_at=local.strftime("%Y-%m-%dT%H:%M"), tz="Asia/Tokyo"),
    )
    plan = response.context["plan"]
    assert plan.scheduled_at == local.astimezone(ZoneInfo("UTC"))
    assert plan.scheduled_at.utcoffset() == timedelta(0)
    body = response.content.decode()
    assert f"{local:%H:%M} (Asia/Tokyo)" in body
    assert f"= {plan.scheduled_at:%H:%M} UTC" in body
    assert "Schedule" in body


def test_it_goes_back_to_the_form_with_everything_typed(manager):
    app = make_app()
    response = post(
        manager,
        text_data(
            app, rooms="room-1\nroom-2", action="edit", extension_info='{"a": 1}'
        ),
        htmx=True,
    )
    assert response.context["step"] == "form"
    body = response.content.decode()
    assert "room-1\nroom-2</textarea>" in body
    assert "{&quot;a&quot;: 1}</textarea>" in body
    assert not response.context["form"].errors


def test_it_loads_a_template_and_keeps_the_rooms_typed(manager):
    from messaging.models import MessageTemplate

    app = make_app()
    template = MessageTemplate.objects.create(
        name="Welcome", kind="text", fields={"sender": "host", "text": "Hi {viewer}"}
    )
    response = post(
        manager,
        text_data(app, rooms="room-5\nroom-6", action="template", template=template.pk),
        htmx=True,
    )
    form = response.context["form"]
    assert not form.is_bound
    assert form.initial["rooms"] == "room-5\nroom-6"
    assert form.initial["text"] == "Hi {viewer}"
    assert "var_viewer" in form.fields


# --- confirming -------------------------------------------------------------------


def test_it_starts_a_batch_for_many_rooms_and_redirects_htmx_to_it(manager):
    app = make_app()
    response = post(
        manager,
        text_data(app, rooms="room-1\nroom-2\nroom-3", action="confirm"),
        htmx=True,
    )
    batch = Batch.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("messaging:batch-detail", args=[batch.pk])
    assert batch.app == app and batch.kind == "text" and batch.created_by == manager
    assert sorted(batch.records.values_list("room_id", flat=True)) == [
        "room-1",
        "room-2",
        "room-3",
    ]
    assert (
        batch.records.first().request_body["TextContent"]
        == "The show starts in 5 minutes"
    )


def test_it_redirects_a_plain_confirm_to_the_batch(manager):
    app = make_app()
    response = post(manager, text_data(app, rooms="room-1\nroom-2", action="confirm"))
    batch = Batch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("messaging:batch-detail", args=[batch.pk])


def test_it_schedules_a_single_room_as_a_batch_in_utc(manager):
    app = make_app()
    when = (timezone.now() + timedelta(hours=3)).astimezone(
        ZoneInfo("America/New_York")
    )
    response = post(
        manager,
        text_data(
            app,
            scheduled_at=when.strftime("%Y-%m-%dT%H:%M"),
            tz="America/New_York",
            action="confirm",
        ),
    )
    batch = Batch.objects.get()
    assert response.status_code == 302
    assert batch.status == BatchStatus.SCHEDULED
    assert batch.scheduled_at == when.replace(second=0, microsecond=0)
    assert batch.records.get().outcome == "waiting"


def test_it_sends_a_broadcast_for_approval_when_the_app_requires_it(manager):
    app = make_app(broadcast_requires_approval=True)
    data = {
        "app": app.pk,
        "kind": "broadcast",
        "text": "Maintenance at 02:00",
        "random": "12345",
        "action": "confirm",
    }
    response = post(manager, data, htmx=True)
    batch = Batch.objects.get()
    assert response["HX-Redirect"] == reverse("messaging:batch-detail", args=[batch.pk])
    assert batch.status == BatchStatus.AWAITING_APPROVAL
    record = batch.records.get()
    assert record.room_id == ""
    assert record.request_body == {
        "Random": 12345,
        "MsgBody": [
            {"MsgType": "TIMTextElem", "MsgContent": {"Text": "Maintenance at 02:00"}}
        ],
    }


def test_it_keeps_the_previewed_broadcast_random_for_the_confirm_step(manager):
    app = make_app(broadcast_requires_approval=True)
    preview = post(manager, {"app": app.pk, "kind": "broadcast", "text": "Hello"})
    random = preview.context["plan"].body["Random"]
    carried = dict(preview.context["carried"])
    assert carried["random"] == str(random)
    confirm = post(
        manager, {**carried, "app": app.pk, "kind": "broadcast", "action": "confirm"}
    )
    assert confirm.status_code == 302
    assert Batch.objects.get().records.get().request_body["Random"] == random


def test_it_shows_a_variable_filled_preview_then_confirms_the_same_body(manager):
    app = make_app()
    data = text_data(app, rooms="room-1\nroom-2", text="Hi {name}", var_name="Ana")
    preview = post(manager, data)
    carried = dict(preview.context["carried"])
    assert carried["var_name"] == "Ana"
    post(manager, {**carried, "app": app.pk, "kind": "text", "action": "confirm"})
    texts = {r.request_body["TextContent"] for r in Batch.objects.get().records.all()}
    assert texts == {"Hi Ana"}


# --- sending one room right away (over real HTTP to a recording provider) -----------


@pytest.fixture
def provider():
    yield from recording_server()


def test_it_sends_one_room_right_away_and_shows_the_result(manager, provider):
    app = make_app(base_url=provider.url)
    provider.answer(
        {
            "ActionStatus": "OK",
            "ErrorCode": 0,
            "ErrorInfo": "",
            "RequestId": "Id-42-O-Seq-1",
            "Response": {"MsgTime": 1750074420, "MsgSeq": 25, "MsgDropReason": ""},
        }
    )
    response = post(manager, text_data(app, action="confirm"), htmx=True)
    assert response.status_code == 200
    record = SendRecord.objects.get()
    assert (record.outcome, record.request_id, record.msg_seq) == (
        "ok",
        "Id-42-O-Seq-1",
        25,
    )
    assert record.user == manager
    assert [r.json() for r in provider.received] == [
        {
            "RoomId": "room-1",
            "Sender_Account": "host-1",
            "TextContent": "The show starts in 5 minutes",
        }
    ]
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="send-panel"')
    assert '<span class="badge ok">OK</span>' in body
    assert 'data-fact="request-id">Id-42-O-Seq-1<' in body
    assert 'data-fact="msg-seq">25<' in body
    assert reverse("messaging:audit-detail", args=[record.pk]) in body
    assert not Batch.objects.exists()


def test_it_explains_a_provider_error(manager, provider):
    app = make_app(base_url=provider.url)
    provider.answer(
        {
            "ActionStatus": "FAIL",
            "ErrorCode": 100004,
            "ErrorInfo": "room not exist",
            "RequestId": "Id-43",
        }
    )
    response = post(manager, text_data(app, action="confirm"))
    record = SendRecord.objects.get()
    assert record.outcome == "failed" and record.error_code == 100004
    body = response.content.decode()
    assert "Not sent" in body
    assert '<span class="badge failed">Failed</span>' in body
    assert "100004</span> room not exist" in body
    assert explain("tencent", 100004) in body


def test_it_sends_a_zego_command_right_away(manager, provider):
    app = make_app(provider="zego", base_url=provider.url, identifier="ops")
    provider.answer({"Code": 0, "Message": "success", "RequestId": "z-1", "Data": {}})
    response = post(
        manager,
        {
            "app": app.pk,
            "kind": "command",
            "room_id": "room-9",
            "from_user": "",
            "to_users": "u1, u2\nu1",
            "content": "ping",
            "action": "confirm",
        },
    )
    assert response.status_code == 200
    record = SendRecord.objects.get()
    assert (record.kind, record.outcome, record.request_id) == ("command", "ok", "z-1")
    assert record.request_body == {
        "RoomId": "room-9",
        "FromUserId": "ops",
        "ToUserId[]": ["u1", "u2"],
        "MessageContent": "ping",
    }
    (received,) = provider.received
    assert [v for k, v in received.query if k == "ToUserId[]"] == ["u1", "u2"]
    assert received.param("MessageContent") == "ping"


# --- against the sandbox provider (live_server) -------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_delivers_a_text_message_to_the_sandbox_room(manager, live_server):
    from messaging.sandbox.models import SandboxMessage

    app = make_app(base_url=live_server.url + "/sandbox")
    make_sandbox_app(app, rooms=("room-1",))
    response = post(
        manager,
        text_data(app, sender=app.identifier, text="Hello {who}", var_who="room 1"),
        htmx=True,
    )
    assert "Check and confirm" in response.content.decode()
    carried = {
        "app": app.pk,
        "kind": "text",
        "action": "confirm",
        "rooms": "room-1",
        "sender": app.identifier,
        "text": "Hello {who}",
        "var_who": "room 1",
    }
    response = post(manager, carried, htmx=True)
    record = SendRecord.objects.get()
    assert record.outcome == "ok", (record.error_code, record.error_info)
    message = SandboxMessage.objects.get()
    assert message.room.room_id == "room-1"
    assert message.msg_seq == record.msg_seq
    assert message.msg_body == [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "Hello room 1"}}
    ]
    assert f'data-fact="request-id">{record.request_id}<' in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_it_shows_the_sandbox_answer_for_a_missing_room(manager, live_server):
    app = make_app(base_url=live_server.url + "/sandbox")
    make_sandbox_app(app, rooms=("room-1",))
    response = post(
        manager,
        text_data(app, rooms="no-such-room", sender=app.identifier, action="confirm"),
    )
    record = SendRecord.objects.get()
    assert (record.outcome, record.error_code) == ("failed", 100004)
    body = response.content.decode()
    assert "Not sent" in body
    assert explain("tencent", 100004) in body


@pytest.mark.django_db(transaction=True)
def test_it_broadcasts_exactly_the_previewed_body(manager, live_server):
    from messaging.sandbox.models import SandboxMessage

    app = make_app(base_url=live_server.url + "/sandbox")
    make_sandbox_app(app, rooms=("room-1", "room-2"))
    data = {"app": app.pk, "kind": "broadcast", "custom_data": '{"type": "notice"}'}
    preview = post(manager, data)
    previewed = preview.context["plan"].body
    response = post(
        manager, {**dict(preview.context["carried"]), **data, "action": "confirm"}
    )
    assert response.status_code == 200
    record = SendRecord.objects.get()
    assert record.outcome == "ok", (record.error_code, record.error_info)
    assert record.request_body == previewed
    assert record.random == previewed["Random"]
    assert SandboxMessage.objects.filter(kind="broadcast").count() == 2


def test_it_answers_an_htmx_history_restore_with_the_whole_page(manager):
    app = make_app()
    response = client_for(manager).get(
        reverse("messaging:send"),
        {"app": app.pk},
        HTTP_HX_REQUEST="true",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )
    body = response.content.decode()
    assert body.startswith("<!doctype html>")
    assert 'id="send-panel"' in body
