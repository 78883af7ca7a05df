from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from messaging.management.base import TranslatedCommand
from messaging.models import Outcome, ProviderApp, SendRecord
from messaging.services.audit import (
    ExportCount,
    LogFilter,
    csv_lines,
    filter_send_log,
    jsonl_lines,
)
from messaging.services.audit_chain import verify_chain


def _parse_time(option: str, raw: str | None) -> datetime | None:
    """An ISO 8601 date or date-time; without an offset it is read in TIME_ZONE."""
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise CommandError(
            _(
                "--%(option)s: %(value)s is not an ISO 8601 date or date-time "
                "(e.g. 2026-11-01 or 2026-11-01T08:00:00+00:00)"
            )
            % {"option": option, "value": repr(raw)},
            returncode=2,
        ) from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


class Command(TranslatedCommand):
    help = gettext_noop(
        "Read and prove the send log. `auditlog export` streams it, newest first, to "
        "standard output as CSV or JSON lines, with the same columns as the CSV "
        "download. `auditlog verify` links new final sends, then walks the hash chain "
        "and exits 1 naming the first send that was changed, removed, reordered or "
        "inserted out of band."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        export = actions.add_parser("export", help=_("stream the (filtered) log"))
        export.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        export.add_argument("--app", metavar="NAME", help=_("only this app's sends"))
        export.add_argument(
            "--since", metavar="ISO", help=_("sent at or after (ISO 8601)")
        )
        export.add_argument("--until", metavar="ISO", help=_("sent before (ISO 8601)"))
        export.add_argument(
            "--outcome", choices=[o.value for o in Outcome], help=_("only this outcome")
        )
        export.add_argument("--room", metavar="ROOM", help=_("only sends to this room"))
        actions.add_parser("verify", help=_("link new final sends and walk the chain"))

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            self._verify()
            return
        log_filter = self._log_filter(options)
        records = filter_send_log(SendRecord.objects.all(), log_filter)
        count = ExportCount()
        lines = (
            csv_lines(records, count)
            if options["format"] == "csv"
            else jsonl_lines(records, count)
        )
        for line in lines:
            self.stdout.write(line, ending="")
        self.stdout.flush()
        # The summary goes to stderr, so stdout stays a clean CSV / JSONL stream.
        self.stderr.write(
            json.dumps({"exported": count.rows, "format": options["format"]})
        )

    def _verify(self) -> None:
        result = verify_chain()
        line = {
            "ok": result.ok,
            "verified_to": result.verified_to,
            "head": result.head,
            "rows": result.rows,
            "seconds": round(result.seconds, 3),
            "rows_per_second": round(result.rows / result.seconds)
            if result.seconds
            else None,
            "checked_at": result.checked_at.isoformat(),
        }
        if not result.ok:
            line.update(problem=result.problem, send=result.problem_record_id)
        self.stdout.write(json.dumps(line))
        if not result.ok:
            raise CommandError(result.problem, returncode=1)

    def _log_filter(self, options: dict[str, Any]) -> LogFilter:
        app = None
        if options["app"] is not None:
            app = ProviderApp.objects.filter(name=options["app"]).first()
            if app is None:
                known = ", ".join(ProviderApp.objects.values_list("name", flat=True))
                raise CommandError(
                    _("--app: no app is called %(name)s (apps: %(known)s)")
                    % {"name": repr(options["app"]), "known": known or _("none")},
                    returncode=2,
                )
        since = _parse_time("since", options["since"])
        until = _parse_time("until", options["until"])
        if since and until and until <= since:
            raise CommandError(_("--until must be later than --since"), returncode=2)
        return LogFilter(
            app=app,
            outcome=options["outcome"] or "",
            room=options["room"] or "",
            since=since,
            until=until,
        )
