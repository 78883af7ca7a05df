from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from liveadmin.db_privileges import grant_app_role, models_without_tables

# English here (`manage.py help` lists it); --help shows it in the active language.
HELP = gettext_noop(
    "Create or update the least-privilege PostgreSQL role the web and worker "
    "processes connect as (run as the owner, after migrate). Its password is "
    "LIVEADMIN_DB_PASSWORD when set. Prints one JSON line per table."
)


class Command(BaseCommand):
    help = HELP

    def add_arguments(self, parser: CommandParser) -> None:
        parser.description = _(HELP)
        parser.add_argument("name", help=_("the role's name, e.g. liveadmin_app"))
        parser.add_argument("--database", default="default", help=_("database alias"))

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            raise CommandError(
                _("dbroles needs PostgreSQL; this database is %(vendor)s")
                % {"vendor": connection.vendor},
                returncode=2,
            )
        if missing := models_without_tables(connection):
            raise CommandError(
                _("run migrate first: no table %(tables)s")
                % {"tables": ", ".join(missing)},
                returncode=2,
            )
        password = settings.LIVEADMIN_DB_PASSWORD or None
        with transaction.atomic(using=options["database"]):
            steps = grant_app_role(connection, options["name"], password)
        for step in steps:
            self.stdout.write(json.dumps(step))
