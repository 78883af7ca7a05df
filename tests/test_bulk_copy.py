"""liveadmin/bulk_copy.py: a batch's rows written with COPY (PostgreSQL) are the rows
bulk_create writes."""

from __future__ import annotations

import pytest
from django.db import transaction

from liveadmin import bulk_copy
from liveadmin.roles import Role
from messaging.models import Batch, SendRecord
from messaging.services import sending
from tests.factories import make_app, make_user

pytestmark = pytest.mark.django_db


def _records(app, user, batch):
    bodies = [
        {"RoomId": f"room-{i}", "Sender_Account": "host", "Text": f"hello {i} ü"}
        for i in range(5)
    ] + [{"RoomId": "", "Text": None, "Nested": {"a": [1, 2.5, True, None]}}]
    records = [
        sending.new_record(app, "text", body, actor=user, batch=batch)
        for body in bodies
    ]
    for i, record in enumerate(records):
        record.random = 1000 + i  # the same in both inserts
    return records


def test_copied_rows_are_the_rows_bulk_create_writes():
    app = make_app()
    user = make_user("manager1", role=Role.MANAGER)

    def new_batch():
        return Batch.objects.create(
            app=app, kind="text", fields={}, room_count=6, created_by=user
        )

    copied_batch, created_batch = new_batch(), new_batch()
    with transaction.atomic():
        bulk_copy.insert(_records(app, user, copied_batch), batch_size=2)
    SendRecord.objects.bulk_create(_records(app, user, created_batch))

    def rows(batch):
        return [
            {
                k: v
                for k, v in row.items()
                if k not in ("id", "batch_id", "created_at", "updated_at")
            }
            for row in SendRecord.objects.filter(batch=batch).order_by("id").values()
        ]

    assert len(rows(copied_batch)) == 6
    assert rows(copied_batch) == rows(created_batch)
    assert all(r.created_at and r.updated_at for r in copied_batch.records.all())
