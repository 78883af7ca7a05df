"""The decision log and the blocklist change history are append-only in the database.

PostgreSQL: UPDATE of what was recorded is refused (a decision's review state,
sanction and send are moderation's to fill in); DELETE is refused except inside the retention
purge, which declares itself with SET LOCAL liveadmin.retention_purge = 'on'
(webhooks/retention.py). The application's role has no DELETE on these tables at
all (liveadmin/db_privileges.py): the purge runs as the owner. A deleted user's
actor_id in the change history may still become NULL. SQLite: UPDATE is
refused; DELETE is left to the model and queryset guards (Django's flush deletes).
"""

import django.utils.timezone
from django.db import migrations, models

from liveadmin.migration_sql import per_vendor

TABLES = ["webhooks_decision", "webhooks_blocklistchange", "webhooks_retentionpurge"]
# Deleting a user sets the change history's actor_id to NULL (the name stays); a
# decision's review state, sanction and send are filled in later (moderation).
UPDATE_OF = {
    "webhooks_blocklistchange": " OF id, created_at, actor_name, object_type, "
    "object_id, action, before, after",
    "webhooks_decision": " OF id, created_at, app_id, room_id, sender, action, "
    "error_code, entry_ids, text, original, response, latency_us, own_send",
}

PG_FORWARD = """
CREATE OR REPLACE FUNCTION webhooks_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'webhooks_decision'
        AND current_setting('liveadmin.retention_purge', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$
"""
for table in TABLES:
    PG_FORWARD += f"""
---
CREATE TRIGGER {table}_no_update BEFORE UPDATE{UPDATE_OF.get(table, "")} ON {table}
    FOR EACH ROW EXECUTE FUNCTION webhooks_append_only()
---
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION webhooks_append_only()
"""
PG_BACKWARD = "\n---\n".join(
    [f"DROP TRIGGER IF EXISTS {t}_no_update ON {t}\n---\nDROP TRIGGER IF EXISTS {t}_no_delete ON {t}" for t in TABLES]
    + ["DROP FUNCTION IF EXISTS webhooks_append_only()"]
)
SQLITE_FORWARD = "\n---\n".join(
    f"""CREATE TRIGGER {t}_no_update BEFORE UPDATE{UPDATE_OF.get(t, "")} ON {t}
BEGIN
    SELECT RAISE(ABORT, '{t} is append-only: UPDATE is not allowed');
END"""
    for t in TABLES
)
SQLITE_BACKWARD = "\n---\n".join(f"DROP TRIGGER IF EXISTS {t}_no_update" for t in TABLES)


forward = per_vendor({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD})
backward = per_vendor({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD})


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0003_decision_own_send'),
    ]

    operations = [
        migrations.CreateModel(
            name='RetentionPurge',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('purged_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('table', models.CharField(max_length=64)),
                ('cutoff', models.DateTimeField(help_text='Rows created before this were removed.')),
                ('rows', models.PositiveBigIntegerField()),
                ('first_id', models.BigIntegerField(blank=True, null=True)),
                ('last_id', models.BigIntegerField(blank=True, null=True)),
                ('oldest', models.DateTimeField(blank=True, null=True)),
                ('newest', models.DateTimeField(blank=True, null=True)),
                ('retention_days', models.PositiveIntegerField()),
            ],
            options={
                'ordering': ['-purged_at', '-id'],
            },
        ),
        migrations.RunPython(forward, backward),
    ]
