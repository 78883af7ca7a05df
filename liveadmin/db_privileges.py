"""The least-privilege database role the web and worker processes connect as.

Migrations run as the owner of the tables. The application's role (``manage.py
dbroles NAME``, run as the owner after every migrate) may read and write the
working tables, but on the logs it may only read and append, and on the send log
update the answer columns (the triggers then allow one answer per send). It owns
nothing, so it cannot TRUNCATE, ALTER a table, disable a trigger or change
``session_replication_role``; it is no superuser and cannot create roles.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.db.backends.base.base import BaseDatabaseWrapper

from messaging.models import IDENTITY_FIELDS, SendRecord

logger = logging.getLogger(__name__)

# table -> privileges, for the tables that are logs. Every other table of the
# schema gets SELECT, INSERT, UPDATE, DELETE.
APPEND_ONLY = "SELECT, INSERT"
LOG_TABLES: dict[str, str] = {
    "messaging_sendrecord": "SELECT, INSERT",  # + UPDATE of the answer columns
    "messaging_auditlink": APPEND_ONLY,
    "messaging_auditverification": APPEND_ONLY,
    # The linker's queue: a row becomes final (INSERT by trigger), is linked (DELETE).
    "messaging_auditpending": "SELECT, INSERT, DELETE",
    "webhooks_decision": APPEND_ONLY,
    "webhooks_blocklistchange": APPEND_ONLY,
    "webhooks_retentionpurge": APPEND_ONLY,
    "django_migrations": "SELECT",
}


def answer_columns() -> list[str]:
    """The send log's columns the application may update: all but the identity."""
    return [
        f.column
        for f in SendRecord._meta.concrete_fields
        if f.column and f.name not in IDENTITY_FIELDS
    ]


def _tables(connection: BaseDatabaseWrapper) -> list[str]:
    with connection.cursor() as cursor:
        return sorted(
            t.name
            for t in connection.introspection.get_table_list(cursor)
            if t.type == "t"
        )


def grant_app_role(
    connection: BaseDatabaseWrapper, name: str, password: str | None
) -> list[dict[str, Any]]:
    """Create or update role ``name`` with exactly the application's privileges.

    Returns one line per step, for the command's output (never the password).
    """
    qn = connection.ops.quote_name
    role = qn(name)
    steps: list[dict[str, Any]] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        exists = cursor.fetchone() is not None
        verb = "ALTER" if exists else "CREATE"
        options = (
            "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
            "NOINHERIT"
        )
        if password:
            # Parameters cannot be bound in utility statements: quote it as a literal.
            literal = "'" + password.replace("'", "''") + "'"
            cursor.execute(f"{verb} ROLE {role} {options} PASSWORD {literal}")
        else:
            cursor.execute(f"{verb} ROLE {role} {options}")
        steps.append(
            {"role": name, "created": not exists, "password_set": bool(password)}
        )
        cursor.execute("SELECT current_database(), current_schema()")
        database, schema = cursor.fetchone()
        cursor.execute(f"GRANT CONNECT ON DATABASE {qn(database)} TO {role}")
        cursor.execute(f"GRANT USAGE ON SCHEMA {qn(schema)} TO {role}")
        cursor.execute(f"REVOKE CREATE ON SCHEMA {qn(schema)} FROM {role}")
        for table in _tables(connection):
            cursor.execute(f"REVOKE ALL ON TABLE {qn(table)} FROM {role}")
            privileges = LOG_TABLES.get(table, "SELECT, INSERT, UPDATE, DELETE")
            cursor.execute(f"GRANT {privileges} ON TABLE {qn(table)} TO {role}")
            step: dict[str, Any] = {"table": table, "grant": privileges}
            if table == "webhooks_blocklistchange":
                # Deleting a user sets actor_id to NULL (the name is kept).
                cursor.execute(
                    f"GRANT UPDATE (actor_id) ON TABLE {qn(table)} TO {role}"
                )
            if table == SendRecord._meta.db_table:
                columns = answer_columns()
                cursor.execute(
                    f"GRANT UPDATE ({', '.join(qn(c) for c in columns)}) "
                    f"ON TABLE {qn(table)} TO {role}"
                )
                step["update_columns"] = columns
            steps.append(step)
        cursor.execute(
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {qn(schema)} TO {role}"
        )
    logger.info("database role %s granted the application's privileges", name)
    return steps


def models_without_tables(connection: BaseDatabaseWrapper) -> list[str]:
    """Managed models whose table is missing (migrate first)."""
    tables = set(_tables(connection))
    return [
        m._meta.db_table
        for m in apps.get_models()
        if m._meta.managed and m._meta.db_table not in tables
    ]
