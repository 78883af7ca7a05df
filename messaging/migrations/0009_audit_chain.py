"""The hash chain over final sends, and "answer once" in the database.

A send goes from ``waiting`` to a final outcome once; after that no column but
``updated_at`` may change (PostgreSQL: a row trigger comparing the whole row, so
columns added later are covered too; SQLite: the columns that exist here). The
identity columns, now with ``batch_id``, never change. A row that becomes final
(or is inserted final) is queued in messaging_auditpending, in that order, for
the linker (messaging/services/audit_chain.py). Links are insert-only.

TRUNCATE and disabling triggers are refused by privileges, not triggers: the
application connects as the role `manage.py dbroles` sets up, which holds
neither (README "Least privilege").
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from liveadmin.migration_sql import per_vendor

IDENTITY_COLUMNS = [
    "id",
    "created_at",
    "user_id",
    "app_id",
    "batch_id",
    "kind",
    "room_id",
    "sender",
    "random",
    "request_body",
]
APPEND_ONLY = "messaging_sendrecord is append-only"

PG_FORWARD = """
DROP TRIGGER IF EXISTS sendrecord_identity_immutable ON messaging_sendrecord
---
CREATE OR REPLACE FUNCTION messaging_sendrecord_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    unchanged messaging_sendrecord;
BEGIN
    IF {identity_changed} THEN
        RAISE EXCEPTION '{append_only}: {identity} cannot change'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.outcome <> 'waiting' THEN
        unchanged := NEW;
        unchanged.updated_at := OLD.updated_at;
        IF unchanged IS DISTINCT FROM OLD THEN
            RAISE EXCEPTION '{append_only}: send % is final (%) and never changes',
                OLD.id, OLD.outcome USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    RETURN NEW;
END
$$
---
CREATE TRIGGER sendrecord_guard
    BEFORE UPDATE ON messaging_sendrecord
    FOR EACH ROW EXECUTE FUNCTION messaging_sendrecord_guard()
---
CREATE OR REPLACE FUNCTION messaging_sendrecord_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO messaging_auditpending (record_id) VALUES (NEW.id);
    RETURN NULL;
END
$$
---
CREATE TRIGGER sendrecord_inserted_final
    AFTER INSERT ON messaging_sendrecord
    FOR EACH ROW WHEN (NEW.outcome <> 'waiting')
    EXECUTE FUNCTION messaging_sendrecord_enqueue()
---
CREATE TRIGGER sendrecord_becomes_final
    AFTER UPDATE OF outcome ON messaging_sendrecord
    FOR EACH ROW WHEN (OLD.outcome = 'waiting' AND NEW.outcome <> 'waiting')
    EXECUTE FUNCTION messaging_sendrecord_enqueue()
---
CREATE OR REPLACE FUNCTION messaging_auditlink_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'messaging_auditlink is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$
---
CREATE TRIGGER auditlink_no_update
    BEFORE UPDATE ON messaging_auditlink
    FOR EACH ROW EXECUTE FUNCTION messaging_auditlink_append_only()
---
CREATE TRIGGER auditlink_no_delete
    BEFORE DELETE ON messaging_auditlink
    FOR EACH STATEMENT EXECUTE FUNCTION messaging_auditlink_append_only()
---
INSERT INTO messaging_auditpending (record_id)
    SELECT id FROM messaging_sendrecord WHERE outcome <> 'waiting'
    ORDER BY updated_at, id
""".format(
    identity_changed=" OR ".join(
        f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in IDENTITY_COLUMNS
    ),
    identity=", ".join(IDENTITY_COLUMNS),
    append_only=APPEND_ONLY,
)
PG_BACKWARD = """
DROP TRIGGER IF EXISTS auditlink_no_delete ON messaging_auditlink
---
DROP TRIGGER IF EXISTS auditlink_no_update ON messaging_auditlink
---
DROP FUNCTION IF EXISTS messaging_auditlink_append_only()
---
DROP TRIGGER IF EXISTS sendrecord_becomes_final ON messaging_sendrecord
---
DROP TRIGGER IF EXISTS sendrecord_inserted_final ON messaging_sendrecord
---
DROP FUNCTION IF EXISTS messaging_sendrecord_enqueue()
---
DROP TRIGGER IF EXISTS sendrecord_guard ON messaging_sendrecord
---
DROP FUNCTION IF EXISTS messaging_sendrecord_guard()
"""


def sqlite_forward(columns):
    answer = [c for c in columns if c != "updated_at"]
    return """
DROP TRIGGER IF EXISTS sendrecord_identity_immutable
---
CREATE TRIGGER sendrecord_identity_immutable
    BEFORE UPDATE ON messaging_sendrecord
    FOR EACH ROW WHEN {identity_changed}
BEGIN
    SELECT RAISE(ABORT, '{append_only}: {identity} cannot change');
END
---
CREATE TRIGGER sendrecord_final_immutable
    BEFORE UPDATE ON messaging_sendrecord
    FOR EACH ROW WHEN OLD.outcome <> 'waiting' AND ({answer_changed})
BEGIN
    SELECT RAISE(ABORT, '{append_only}: a final send never changes');
END
---
CREATE TRIGGER sendrecord_becomes_final
    AFTER UPDATE OF outcome ON messaging_sendrecord
    FOR EACH ROW WHEN OLD.outcome = 'waiting' AND NEW.outcome <> 'waiting'
BEGIN
    INSERT INTO messaging_auditpending (record_id) VALUES (NEW.id);
END
---
CREATE TRIGGER sendrecord_inserted_final
    AFTER INSERT ON messaging_sendrecord
    FOR EACH ROW WHEN NEW.outcome <> 'waiting'
BEGIN
    INSERT INTO messaging_auditpending (record_id) VALUES (NEW.id);
END
---
CREATE TRIGGER auditlink_no_update
    BEFORE UPDATE ON messaging_auditlink
BEGIN
    SELECT RAISE(ABORT, 'messaging_auditlink is append-only: UPDATE is not allowed');
END
---
INSERT INTO messaging_auditpending (record_id)
    SELECT id FROM messaging_sendrecord WHERE outcome <> 'waiting'
    ORDER BY updated_at, id
""".format(
        identity_changed=" OR ".join(
            f"NEW.{c} IS NOT OLD.{c}" for c in IDENTITY_COLUMNS
        ),
        answer_changed=" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in answer),
        identity=", ".join(IDENTITY_COLUMNS),
        append_only=APPEND_ONLY,
    )


SQLITE_BACKWARD = """
DROP TRIGGER IF EXISTS auditlink_no_update
---
DROP TRIGGER IF EXISTS sendrecord_inserted_final
---
DROP TRIGGER IF EXISTS sendrecord_becomes_final
---
DROP TRIGGER IF EXISTS sendrecord_final_immutable
"""


def _sqlite_forward(apps):
    model = apps.get_model("messaging", "SendRecord")
    return sqlite_forward([f.column for f in model._meta.concrete_fields])


forward = per_vendor({"postgresql": PG_FORWARD, "sqlite": _sqlite_forward})
backward = per_vendor({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD})


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0008_delivery_outcomes_unknown_cancelled'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditVerification',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('checked_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('ok', models.BooleanField()),
                ('verified_to', models.BigIntegerField(default=0)),
                ('head', models.CharField(blank=True, default='', max_length=64)),
                ('rows', models.BigIntegerField(default=0)),
                ('seconds', models.FloatField(default=0)),
                ('problem', models.TextField(blank=True, default='')),
                ('problem_record_id', models.BigIntegerField(blank=True, null=True)),
            ],
            options={
                'ordering': ['-checked_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='AuditLink',
            fields=[
                ('seq', models.BigIntegerField(primary_key=True, serialize=False)),
                ('digest', models.CharField(max_length=64)),
                ('record', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='link', to='messaging.sendrecord')),
            ],
            options={
                'ordering': ['seq'],
            },
        ),
        migrations.CreateModel(
            name='AuditPending',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('record', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='messaging.sendrecord')),
            ],
        ),
        migrations.RunPython(forward, backward),
    ]
