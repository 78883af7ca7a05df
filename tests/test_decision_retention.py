"""The decision log is append-only; the retention purge is the only way out and
records what it removed."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from tests.conftest import client_for
from tests.factories import make_app
from webhooks.models import Decision, RetentionPurge

pytestmark = pytest.mark.django_db


def make_decision(app, *, days_ago: float = 0, **fields) -> Decision:
    fields.setdefault("room_id", "room-1")
    fields.setdefault("sender", "user-1")
    fields.setdefault("action", "forbid")
    return Decision.objects.create(
        app=app, created_at=timezone.now() - timedelta(days=days_ago), **fields
    )


def test_it_refuses_to_change_or_delete_a_decision():
    decision = make_decision(make_app())
    with pytest.raises(PermissionError):
        decision.delete()
    with pytest.raises(PermissionError):
        Decision.objects.all().delete()
    with pytest.raises(PermissionError):
        Decision.objects.update(text="x")
    decision.text = "rewritten"
    with pytest.raises(PermissionError):
        decision.save()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE webhooks_decision SET text = 'x'")
    if connection.vendor == "postgresql":
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("DELETE FROM webhooks_decision")
    assert Decision.objects.get().text == ""


def test_moderation_fills_in_the_review_and_nothing_else():
    decision = make_decision(make_app())
    assert Decision.objects.filter(pk=decision.pk).update(
        review="dismissed", reviewed_by="moderator1"
    )
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE webhooks_decision SET sender = 'someone-else'")
    decision.refresh_from_db()
    assert (decision.review, decision.sender) == ("dismissed", "user-1")


def test_it_offers_no_delete_in_the_admin(admin_user):
    decision = make_decision(make_app())
    client = client_for(admin_user)
    delete_url = reverse("admin:webhooks_decision_delete", args=[decision.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    changelist = client.get(reverse("admin:webhooks_decision_changelist"))
    assert b'name="action"' not in changelist.content
    assert Decision.objects.filter(pk=decision.pk).exists()


def test_the_purge_removes_only_old_decisions_and_records_it(settings):
    settings.DECISION_RETENTION_DAYS = 30
    app = make_app()
    old = [make_decision(app, days_ago=40 + n) for n in range(3)]
    recent = make_decision(app, days_ago=29)
    out = io.StringIO()
    call_command("purgedecisions", "--dry-run", stdout=out)
    assert json.loads(out.getvalue())["would_purge"] == 3
    assert Decision.objects.count() == 4 and not RetentionPurge.objects.exists()

    out = io.StringIO()
    call_command("purgedecisions", stdout=out)
    line = json.loads(out.getvalue())
    assert (line["purged"], line["retention_days"]) == (3, 30)
    assert (line["first_id"], line["last_id"]) == (old[0].pk, old[-1].pk)
    assert list(Decision.objects.values_list("pk", flat=True)) == [recent.pk]
    purge = RetentionPurge.objects.get()
    assert (purge.table, purge.rows, purge.first_id, purge.last_id) == (
        "webhooks_decision",
        3,
        old[0].pk,
        old[-1].pk,
    )
    assert purge.oldest == old[-1].created_at and purge.newest == old[0].created_at
    # The record of a purge is append-only too.
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE webhooks_retentionpurge SET cutoff = purged_at")


def test_a_purge_with_nothing_to_remove_records_nothing(settings):
    settings.DECISION_RETENTION_DAYS = 30
    make_decision(make_app(), days_ago=1)
    out = io.StringIO()
    call_command("purgedecisions", stdout=out)
    assert json.loads(out.getvalue())["purged"] == 0
    assert not RetentionPurge.objects.exists()
