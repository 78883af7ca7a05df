from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from webhooks.retention import purge_decisions


class Command(BaseCommand):
    # Marked here, translated in add_arguments (argparse needs a str).
    help = gettext_noop(
        "Remove webhook decisions older than DECISION_RETENTION_DAYS and record what "
        "was removed. Run as the database owner (the application's role cannot "
        "delete from the log), e.g. daily from cron."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.description = _(self.help)
        parser.add_argument(
            "--dry-run", action="store_true", help=_("count what would be removed")
        )

    def handle(self, *args: Any, **options: Any) -> None:
        purge = purge_decisions(dry_run=options["dry_run"])
        self.stdout.write(
            json.dumps(
                {
                    "purged": purge.rows if not options["dry_run"] else 0,
                    "would_purge": purge.rows if options["dry_run"] else None,
                    "table": purge.table,
                    "cutoff": purge.cutoff.isoformat(),
                    "retention_days": settings.DECISION_RETENTION_DAYS,
                    "first_id": purge.first_id,
                    "last_id": purge.last_id,
                    "record": purge.pk,
                }
            )
        )
