"""Answer once, and a hash chain over final sends that ``auditlog verify`` walks.

Tampering is done the way an owner of the database could: with the triggers
bypassed (PostgreSQL: session_replication_role = replica, as the superuser the
tests connect as; SQLite: the triggers dropped for the statement).
"""

from __future__ import annotations

import hashlib
import io
import json
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from liveadmin.db_privileges import answer_columns
from messaging.models import AuditLink, AuditPending, AuditVerification, SendRecord
from messaging.services.audit_chain import (
    CHAIN_KEYS,
    link_final_sends,
)
from messaging.tasks import verify_audit_chain
from tests.conftest import client_for
from tests.factories import make_app, make_batch, make_send_record, make_user

pytestmark = pytest.mark.django_db


@contextmanager
def triggers_bypassed():
    """What an owner of the database can do: write without the guards."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
            yield cursor
            return
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND tbl_name IN ('messaging_sendrecord', 'messaging_auditlink')"
        )
        saved = cursor.fetchall()
        for name, _ in saved:
            cursor.execute(f"DROP TRIGGER {name}")
        yield cursor
        for _, sql in saved:
            cursor.execute(sql)


def offline_verify(jsonl: str) -> tuple[int, str]:
    """The README's algorithm, on an export alone: oldest link first."""
    rows = [json.loads(line) for line in jsonl.splitlines()]
    rows = sorted((r for r in rows if r["chain_seq"]), key=lambda r: r["chain_seq"])
    digest = bytes(32)
    for n, row in enumerate(rows, start=1):
        assert row["chain_seq"] == n
        canonical = json.dumps(
            [row[k] for k in CHAIN_KEYS],
            ensure_ascii=False,
            separators=(",", ":"),
            sort_keys=True,
        )
        digest = hashlib.sha256(digest + canonical.encode()).digest()
        assert digest.hex() == row["chain_hash"], row["id"]
    return len(rows), digest.hex()


def export_jsonl() -> str:
    out = io.StringIO()
    call_command(
        "auditlog", "export", "--format", "jsonl", stdout=out, stderr=io.StringIO()
    )
    return out.getvalue()


def verify_command() -> dict:
    out = io.StringIO()
    call_command("auditlog", "verify", stdout=out)
    return json.loads(out.getvalue())


def broken_verify() -> tuple[dict, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("auditlog", "verify", stdout=out)
    assert raised.value.returncode == 1
    return json.loads(out.getvalue()), str(raised.value)


def waiting_send(**fields) -> SendRecord:
    return make_send_record(
        outcome="waiting", action_status="", error_code=None, request_id="", **fields
    )


def answer(record: SendRecord, outcome: str = "ok", **fields) -> int:
    return SendRecord.objects.filter(pk=record.pk).update(
        outcome=outcome, request_id=f"req-answer-{record.pk}", **fields
    )


# --- answer once ---------------------------------------------------------------------


def test_it_writes_an_answer_once_and_never_changes_a_final_row():
    record = waiting_send()
    assert answer(record, "failed", error_code=10017, error_info="muted") == 1
    # The ORM reaches only waiting rows: a second answer changes nothing.
    assert answer(record, "ok", error_code=0) == 0
    record.refresh_from_db()
    assert (record.outcome, record.error_code, record.error_info) == (
        "failed",
        10017,
        "muted",
    )
    # In SQL the database refuses it.
    for sql in (
        "UPDATE messaging_sendrecord SET outcome = 'ok' WHERE id = %s",
        "UPDATE messaging_sendrecord SET outcome = 'waiting' WHERE id = %s",
        "UPDATE messaging_sendrecord SET error_info = 'rewritten', request_id = 'forged',"
        " msg_seq = 999, response_body = '{}' WHERE id = %s",
        "UPDATE messaging_sendrecord SET claimed_at = created_at WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [record.pk])
    record.refresh_from_db()
    assert (record.outcome, record.error_info) == ("failed", "muted")


def test_it_refuses_to_save_a_changed_final_row_through_the_model():
    record = make_send_record(outcome="ok")
    record = SendRecord.objects.get(pk=record.pk)
    record.save()  # unchanged: allowed
    record.error_info = "rewritten"
    with pytest.raises(PermissionError, match="final"):
        record.save()
    assert SendRecord.objects.get(pk=record.pk).error_info == ""


def test_it_never_moves_a_send_to_another_batch():
    batch = make_batch()
    record = waiting_send(app=batch.app, batch=batch)
    other = make_batch(app=batch.app)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        SendRecord.objects.filter(pk=record.pk).update(batch=other)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE messaging_sendrecord SET batch_id = NULL WHERE id = %s", [record.pk]
        )


def test_it_answers_many_waiting_rows_in_one_update():
    rows = [waiting_send(room_id=f"room-{n}") for n in range(5)]
    updated = SendRecord.objects.filter(pk__in=[r.pk for r in rows]).update(
        outcome="dropped", drop_reason="MsgFreqCtrl"
    )
    assert updated == 5
    assert AuditPending.objects.count() == 5
    assert link_final_sends() == 5
    assert sorted(AuditLink.objects.values_list("record_id", flat=True)) == sorted(
        r.pk for r in rows
    )


# --- the chain -------------------------------------------------------------------------


def test_it_links_sends_in_the_order_they_become_final():
    first, second, third = waiting_send(), waiting_send(), waiting_send()
    answer(third)
    answer(first, "failed", error_code=10017)
    assert link_final_sends() == 2
    answer(second)
    assert link_final_sends() == 1
    assert link_final_sends() == 0
    assert list(AuditLink.objects.values_list("seq", "record_id")) == [
        (1, third.pk),
        (2, first.pk),
        (3, second.pk),
    ]
    assert not AuditPending.objects.exists()


def test_it_leaves_waiting_sends_out_of_the_chain():
    waiting = waiting_send()
    final = make_send_record()  # written final at once (e.g. refused before sending)
    link_final_sends()
    assert list(AuditLink.objects.values_list("record_id", flat=True)) == [final.pk]
    assert not AuditLink.objects.filter(record=waiting).exists()


def test_it_refuses_to_change_or_delete_a_link():
    make_send_record()
    link_final_sends()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE messaging_auditlink SET digest = 'x'")
    if connection.vendor == "postgresql":
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("DELETE FROM messaging_auditlink")
    assert AuditLink.objects.count() == 1


def test_it_exports_what_an_auditor_needs_to_verify_offline(manager):
    app = make_app(name="offline")
    for n in range(4):
        make_send_record(
            app=app,
            user=manager,
            room_id=f"=room-{n}",
            request_body={"Text": "héllo", "b": [1, 2.5, None], "a": {"z": 1, "y": 2}},
        )
    answer(waiting_send(app=app, user=manager), "failed", error_code=10016)
    waiting_send(app=app, user=manager)  # not final: not in the chain
    result = verify_command()
    assert result["ok"] is True and result["verified_to"] == 5
    count, head = offline_verify(export_jsonl())
    assert (count, head) == (5, result["head"])


def test_it_verifies_an_intact_chain_and_records_it(auditor):
    for _ in range(3):
        make_send_record()
    assert verify_command()["verified_to"] == 3
    verify_audit_chain()  # the periodic task: links and verifies too
    latest = AuditVerification.objects.first()
    assert (latest.ok, latest.verified_to, latest.problem) == (True, 3, "")
    body = client_for(auditor).get(reverse("messaging:audit")).content.decode()
    assert "Hash chain verified to #3 at" in body


@pytest.mark.django_db(transaction=True)
def test_verification_reads_times_as_the_links_were_written():
    """On PostgreSQL verification has the database write the times in their exported
    form (and reads ahead on a second connection, which needs committed rows); each
    form the export writes must come out the same, else it reports a false break."""
    user, app = make_user(), make_app()
    for created_at in [
        datetime(2026, 12, 1, 19, 48, 5, tzinfo=UTC),  # no microseconds
        datetime(2026, 12, 1, 19, 48, 5, 7, tzinfo=UTC),
        datetime(2026, 12, 2, 3, 48, 5, 120000, tzinfo=ZoneInfo("Asia/Shanghai")),
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
    ]:
        for msg_time in [None, 0, 1_764_618_486]:
            make_send_record(
                app=app,
                user=user,
                created_at=created_at,
                msg_time=msg_time,
                response_body={"Info": "日本\n\u0001", "N": {"b": 1.5, "a": [1e16]}},
            )
    result = verify_command()
    assert (result["ok"], result["verified_to"]) == (True, 12)
    assert offline_verify(export_jsonl()) == (12, result["head"])


def test_it_runs_verification_periodically():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert (
        schedule["verify-audit-chain"]["task"] == "messaging.tasks.verify_audit_chain"
    )
    assert schedule["link-audit-chain"]["task"] == "messaging.tasks.link_audit_chain"


def test_it_names_a_send_changed_out_of_band(auditor):
    records = [make_send_record() for _ in range(4)]
    assert verify_command()["ok"]
    with triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE messaging_sendrecord SET outcome = 'failed', error_info = 'rewritten',"
            " request_id = 'forged', msg_seq = 999 WHERE id = %s",
            [records[2].pk],
        )
    line, message = broken_verify()
    assert line["ok"] is False and line["send"] == records[2].pk
    assert line["verified_to"] == 2
    assert f"send {records[2].pk} (link #3) does not match its link" in message
    body = client_for(auditor).get(reverse("messaging:audit")).content.decode()
    assert "Hash chain broken" in body and f"send {records[2].pk} (link #3)" in body


def test_it_names_a_removed_send():
    records = [make_send_record() for _ in range(4)]
    link_final_sends()
    with triggers_bypassed() as cursor:
        cursor.execute(
            "DELETE FROM messaging_auditlink WHERE record_id = %s", [records[1].pk]
        )
        cursor.execute(
            "DELETE FROM messaging_sendrecord WHERE id = %s", [records[1].pk]
        )
    line, message = broken_verify()
    assert line["verified_to"] == 1
    assert "link #2 is missing" in message and f"send {records[2].pk}" in message


def test_it_notices_removed_links_at_the_end_of_the_chain():
    records = [make_send_record() for _ in range(3)]
    assert verify_command()["verified_to"] == 3
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM messaging_auditlink WHERE seq = 3")
        cursor.execute(
            "DELETE FROM messaging_sendrecord WHERE id = %s", [records[2].pk]
        )
    _, message = broken_verify()
    assert "ends at #2 but was verified to #3" in message


def test_it_names_reordered_sends():
    records = [make_send_record() for _ in range(3)]
    link_final_sends()
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE messaging_auditlink SET record_id = -record_id")
        cursor.execute(
            "UPDATE messaging_auditlink SET record_id = CASE record_id"
            " WHEN -%s THEN %s WHEN -%s THEN %s ELSE -record_id END",
            [records[0].pk, records[1].pk, records[1].pk, records[0].pk],
        )
    line, _ = broken_verify()
    assert (line["send"], line["verified_to"]) == (records[1].pk, 0)


def test_it_names_a_send_inserted_out_of_band():
    make_send_record()
    assert verify_command()["ok"]
    user, app = make_user("intruder"), make_app(name="intruder-app")
    with triggers_bypassed() as cursor:
        cursor.execute(
            "INSERT INTO messaging_sendrecord (created_at, updated_at, user_id, app_id,"
            " kind, room_id, sender, random, outcome, action_status, error_info,"
            " request_id, drop_reason, attempts, retryable, request_body)"
            " SELECT created_at, updated_at, %s, %s, kind, room_id, sender, 7,"
            " 'ok', 'OK', '', 'forged', '', 1, false, request_body"
            " FROM messaging_sendrecord LIMIT 1",
            [user.pk, app.pk],
        )
    forged = SendRecord.objects.get(request_id="forged")
    line, message = broken_verify()
    assert line["send"] == forged.pk
    assert "not in the chain: it was inserted out of band" in message


def test_it_notices_a_rewritten_chain():
    records = [make_send_record() for _ in range(2)]
    assert verify_command()["verified_to"] == 2
    # Rewrite a row and recompute every link after it, as a careful forger would.
    with triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE messaging_sendrecord SET error_info = 'rewritten' WHERE id = %s",
            [records[1].pk],
        )
        cursor.execute("DELETE FROM messaging_auditlink")
        cursor.execute(
            "INSERT INTO messaging_auditpending (record_id) SELECT id FROM"
            " messaging_sendrecord ORDER BY id"
        )
    link_final_sends()
    _, message = broken_verify()
    assert "link #2 differs from the one verified at" in message


def test_verify_reports_speed_and_json():
    make_send_record()
    line = verify_command()
    assert set(line) >= {"ok", "verified_to", "head", "rows", "seconds", "checked_at"}
    assert len(line["head"]) == 64


def test_dbroles_grants_updates_of_the_answer_columns_only():
    columns = answer_columns()
    assert {"outcome", "error_code", "request_id", "response_body"} <= set(columns)
    assert not {"id", "created_at", "user_id", "batch_id", "room_id"} & set(columns)
    out = io.StringIO()
    if connection.vendor == "postgresql":  # tests/test_db_roles.py runs the role
        return
    with pytest.raises(CommandError, match="needs PostgreSQL") as raised:
        call_command("dbroles", "liveadmin_app", stdout=out)
    assert raised.value.returncode == 2
