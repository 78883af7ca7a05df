"""Least privilege on PostgreSQL: the application's role (``manage.py dbroles``)
can send and answer, and cannot rewrite, remove or unguard the logs.

The role is the one `.ci/run` creates (LIVEADMIN_DB_ROLE, password
LIVEADMIN_DB_PASSWORD); without it the test creates its own, named after the test
database. The tests connect as that role to the test database: psycopg for the
statements, and ``manage.py`` subprocesses with their own DATABASE_URL for the
application's own sends, answers and chain. PostgreSQL only (tests/conftest.py).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from liveadmin.roles import Role
from messaging.models import AuditLink, SendRecord
from tests.factories import (
    make_app,
    make_batch,
    make_sandbox_app,
    make_send_record,
    make_user,
)
from webhooks.models import Decision

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = os.environ.get("LIVEADMIN_DB_PASSWORD") or "app-role-test-password"


def role_name() -> str:
    return (
        os.environ.get("LIVEADMIN_DB_ROLE")
        or f"{connection.settings_dict['NAME']}_app"[:63]
    )


@pytest.fixture
def app_role(settings) -> str:
    """The role, with the privileges dbroles grants on the test database."""
    settings.LIVEADMIN_DB_PASSWORD = PASSWORD
    out = io.StringIO()
    call_command("dbroles", role_name(), stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["role"] == role_name() and lines[0]["password_set"] is True
    assert PASSWORD not in out.getvalue()
    return role_name()


def role_url(role: str) -> str:
    db = connection.settings_dict
    return (
        f"postgres://{role}:{PASSWORD}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def refused(role: str, sql: str, params: list | None = None) -> str:
    """Run ``sql`` as ``role``; return the error the database gave."""
    with psycopg.connect(role_url(role), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(sql, params)
        return str(raised.value)


def manage(role: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": role_url(role)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def answered(db):
    batch = make_batch()
    record = make_send_record(app=batch.app, batch=batch)
    return record


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        (
            "UPDATE messaging_sendrecord SET outcome = 'failed', error_info = 'rewritten',"
            " request_id = 'forged', msg_seq = 999, response_body = '{}' WHERE id = %(id)s",
            "append-only: send",
        ),
        (
            "UPDATE messaging_sendrecord SET batch_id = NULL WHERE id = %(id)s",
            "permission denied",
        ),
        ("TRUNCATE messaging_sendrecord CASCADE", "permission denied"),
        ("ALTER TABLE messaging_sendrecord DISABLE TRIGGER USER", "must be owner"),
        ("ALTER TABLE messaging_sendrecord DISABLE TRIGGER ALL", "must be owner"),
        ("SET session_replication_role = replica", "permission denied"),
        ("SET LOCAL session_replication_role = replica", "permission denied"),
        ("DELETE FROM messaging_sendrecord WHERE id = %(id)s", "permission denied"),
        ("UPDATE messaging_auditlink SET digest = 'x'", "permission denied"),
        ("DELETE FROM messaging_auditlink", "permission denied"),
        ("TRUNCATE messaging_auditlink", "permission denied"),
        ("DELETE FROM webhooks_decision", "permission denied"),
        ("UPDATE webhooks_decision SET text = 'x'", "permission denied"),
        ("TRUNCATE webhooks_decision", "permission denied"),
        ("DELETE FROM webhooks_blocklistchange", "permission denied"),
        ("DROP TABLE messaging_sendrecord", "must be owner"),
        ("CREATE TABLE evil (id int)", "permission denied"),
        ("CREATE ROLE evil", "permission denied"),
    ],
)
def test_it_refuses_each_statement_for_the_application_role(
    answered, app_role, sql, error
):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM messaging_sendrecord WHERE id = %s", [answered.pk]
        )
        before = cursor.fetchone()
    message = refused(app_role, sql, {"id": answered.pk} if "%(id)s" in sql else None)
    assert error in message
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM messaging_sendrecord WHERE id = %s", [answered.pk]
        )
        assert cursor.fetchone() == before


def test_the_role_is_no_superuser_and_owns_nothing(answered, app_role):
    with psycopg.connect(role_url(app_role), autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False, False, False)
        owned = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
            " WHERE r.rolname = current_user"
        ).fetchone()
        assert owned == (0,)


def test_the_application_sends_answers_and_links_under_the_role(live_server, app_role):
    make_user("cli-manager", role=Role.MANAGER)
    app = make_app(name="live", base_url=live_server.url + "/sandbox")
    make_sandbox_app(app, rooms=("demo-room",))
    Decision.objects.create(app=app, room_id="demo-room", sender="x", action="forbid")
    sent = manage(
        app_role,
        "sendmsg",
        "text",
        "--app",
        "live",
        "--as",
        "cli-manager",
        "--room",
        "demo-room",
        "--sender",
        "host1",
        "--text",
        "hello",
    )
    assert sent.returncode == 0, sent.stderr
    line = json.loads(sent.stdout.splitlines()[-1])
    assert (line["ok"], line["outcome"]) == (True, "ok")
    record = SendRecord.objects.get()
    assert (record.outcome, record.request_id) == ("ok", line["request_id"])
    verified = manage(app_role, "auditlog", "verify")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["verified_to"] == 1
    assert AuditLink.objects.get().record_id == record.pk
    # The decision log is append-only for the role, and readable.
    exported = manage(app_role, "auditlog", "export", "--format", "jsonl")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["chain_seq"] == 1
