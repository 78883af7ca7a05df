"""The send log is append-only in the database too, not only in the ORM.

PostgreSQL: a trigger refuses every DELETE on messaging_sendrecord, and an UPDATE
that changes what identifies a send (when, who, which app, kind, room, sender,
Random, request body). The send path's updates of the outcome columns go through.
TRUNCATE is left alone on purpose: Django's `flush` (which the test suite runs
between transactional tests) empties tables with TRUNCATE. In production the
application's database role should not hold TRUNCATE (nor own the table); see
README "Audit log".

SQLite: the same UPDATE guard. DELETE cannot be refused there, because Django's
`flush` deletes rows with DELETE on SQLite; the model and queryset guards apply.
"""

from django.db import migrations

IDENTITY_COLUMNS = [
    "id",
    "created_at",
    "user_id",
    "app_id",
    "kind",
    "room_id",
    "sender",
    "random",
    "request_body",
]

PG_FORWARD = """
CREATE OR REPLACE FUNCTION messaging_sendrecord_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'messaging_sendrecord is append-only: DELETE is not allowed'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF {changed} THEN
        RAISE EXCEPTION 'messaging_sendrecord is append-only: {columns} cannot change'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$
---
CREATE TRIGGER sendrecord_no_delete
    BEFORE DELETE ON messaging_sendrecord
    FOR EACH STATEMENT EXECUTE FUNCTION messaging_sendrecord_append_only()
---
CREATE TRIGGER sendrecord_identity_immutable
    BEFORE UPDATE OF {column_list} ON messaging_sendrecord
    FOR EACH ROW EXECUTE FUNCTION messaging_sendrecord_append_only();
""".format(
    changed=" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in IDENTITY_COLUMNS),
    columns=", ".join(IDENTITY_COLUMNS),
    column_list=", ".join(IDENTITY_COLUMNS),
)
PG_BACKWARD = """
DROP TRIGGER IF EXISTS sendrecord_identity_immutable ON messaging_sendrecord
---
DROP TRIGGER IF EXISTS sendrecord_no_delete ON messaging_sendrecord
---
DROP FUNCTION IF EXISTS messaging_sendrecord_append_only()
"""

SQLITE_FORWARD = """
CREATE TRIGGER sendrecord_identity_immutable
    BEFORE UPDATE OF {column_list} ON messaging_sendrecord
    FOR EACH ROW WHEN {changed}
BEGIN
    SELECT RAISE(ABORT, 'messaging_sendrecord is append-only: {columns} cannot change');
END
""".format(
    changed=" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in IDENTITY_COLUMNS),
    columns=", ".join(IDENTITY_COLUMNS),
    column_list=", ".join(IDENTITY_COLUMNS),
)
SQLITE_BACKWARD = "DROP TRIGGER IF EXISTS sendrecord_identity_immutable;"


def _run(schema_editor, script):
    # One statement per execute, without parameters: the function body holds
    # semicolons and the drivers bind parameters statement by statement.
    for statement in script.split("---"):
        if statement.strip():
            schema_editor.execute(statement.strip(), params=None)


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, PG_FORWARD)
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_FORWARD)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, PG_BACKWARD)
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0003_sendrecord_audit_indexes")]

    operations = [migrations.RunPython(forward, backward)]
