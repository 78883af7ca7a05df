"""The send log is append-only: no page, admin action, ORM call or SQL statement
edits what identifies a send or deletes one; the send path still writes outcomes.
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from messaging.models import SendRecord
from tests.conftest import client_for
from tests.factories import make_send_record

pytestmark = pytest.mark.django_db


def test_it_refuses_to_delete_through_the_model_and_queryset():
    record = make_send_record()
    with pytest.raises(PermissionError):
        record.delete()
    with pytest.raises(PermissionError):
        SendRecord.objects.filter(pk=record.pk).delete()
    with pytest.raises(PermissionError):
        SendRecord.objects.all().delete()
    assert SendRecord.objects.filter(pk=record.pk).exists()


def test_it_refuses_a_raw_sql_delete():
    record = make_send_record()
    if connection.vendor == "postgresql":
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(
                "DELETE FROM messaging_sendrecord WHERE id = %s", [record.pk]
            )
    else:
        # SQLite has no DELETE trigger: Django's own `flush` deletes rows there
        # (see migration 0004); the ORM guards above still apply.
        assert connection.vendor == "sqlite"
    assert SendRecord.objects.filter(pk=record.pk).exists()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("room_id", "'other-room'"),
        ("sender", "'someone-else'"),
        ("kind", "'custom'"),
        ("random", "1"),
        ("created_at", "created_at"),  # unchanged: allowed (checked below)
    ],
)
def test_it_refuses_to_rewrite_what_identifies_a_send(column, value):
    record = make_send_record()
    sql = f"UPDATE messaging_sendrecord SET {column} = {value} WHERE id = %s"
    if value == column:
        with connection.cursor() as cursor:
            cursor.execute(sql, [record.pk])
        return
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [record.pk])
    record.refresh_from_db()
    assert (record.room_id, record.sender, record.kind) == ("room-1", "host", "text")


def test_it_refuses_to_move_a_send_to_another_user_or_body(manager):
    record = make_send_record()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        SendRecord.objects.filter(pk=record.pk).update(user=manager)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        SendRecord.objects.filter(pk=record.pk).update(request_body={"Text": "edited"})
    record.refresh_from_db()
    assert record.user != manager
    assert record.request_body["MsgBody"][0]["MsgContent"] == {"Text": "hi"}


def test_it_lets_the_send_path_write_the_outcome():
    record = make_send_record(outcome="waiting", error_code=None, request_id="")
    updated = SendRecord.objects.filter(pk=record.pk, outcome="waiting").update(
        outcome="failed",
        action_status="FAIL",
        error_code=10017,
        error_info="muted",
        request_id="req-after",
        http_status=200,
        latency_ms=12,
        attempts=2,
        retryable=False,
        response_body={"ErrorCode": 10017},
    )
    assert updated == 1
    record.refresh_from_db()
    assert (record.outcome, record.error_code, record.attempts) == ("failed", 10017, 2)
    # A full save() rewrites identity columns with their own values: allowed.
    record.save()


def test_it_offers_no_page_that_writes(auditor, manager):
    record = make_send_record(user=manager)
    for user in (auditor, manager):
        client = client_for(user)
        for url in (
            reverse("messaging:audit"),
            reverse("messaging:audit-detail", args=[record.pk]),
            reverse("messaging:audit-export"),
        ):
            assert client.post(url).status_code == 405
            assert client.delete(url).status_code == 405
    assert SendRecord.objects.filter(pk=record.pk).exists()


def test_it_shows_the_log_read_only_in_the_admin(admin_user):
    record = make_send_record()
    client = client_for(admin_user)
    changelist = client.get(reverse("admin:messaging_sendrecord_changelist"))
    assert changelist.status_code == 200
    assert b'name="action"' not in changelist.content  # no bulk delete action
    change_url = reverse("admin:messaging_sendrecord_change", args=[record.pk])
    view = client.get(change_url)
    assert view.status_code == 200
    assert b'name="_save"' not in view.content
    assert b"room-1" in view.content
    assert client.post(change_url, {"room_id": "x"}).status_code == 403
    assert client.get(reverse("admin:messaging_sendrecord_add")).status_code == 403
    delete_url = reverse("admin:messaging_sendrecord_delete", args=[record.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    record.refresh_from_db()
    assert record.room_id == "room-1"
