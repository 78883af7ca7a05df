from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from liveadmin.roles import Role, has_role
from messaging.kinds import KINDS, FieldSpec
from messaging.management.base import TranslatedCommand
from messaging.models import Batch, BatchStatus, ProviderApp, SendRecord
from messaging.providers.base import SendResult
from messaging.rooms import MAX_ROOMS, parse_room_ids
from messaging.services import batches
from messaging.services.sending import (
    SendValidationError,
    build_request,
    deliver,
    record_send,
    result_from_record,
)

# Which option fills which service field, per kind: built from the kinds' specs
# (messaging/kinds.py); each field's option is its FieldSpec.cli_option.
FIELD_OPTIONS: dict[str, dict[str, str]] = {
    kind: {
        **({"room_id": "room"} if spec.target != "app" else {}),
        **{field.name: field.name for field in spec.fields},
    }
    for kind, spec in KINDS.items()
}


class Command(TranslatedCommand):
    # Django's system checks import every URLconf and view (the whole dashboard): a
    # quarter of a second on each run of a command that only sends (`manage.py
    # check` and every server start run them).
    requires_system_checks: list[str] = []
    help = gettext_noop(
        "Send a room text or custom message or a broadcast (Tencent apps), or a custom "
        "command (ZEGO apps), on behalf of a community manager. Prints one JSON object "
        "per send; exits 0 only if every send succeeded, 2 on bad input (nothing sent)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
        for kind, spec in KINDS.items():
            sub = kinds.add_parser(kind, help=f"{str(spec.label).lower()} ({spec.api})")
            self._common(sub)
            if spec.target != "app":
                self._room(sub, many=spec.target == "rooms")
            groups: dict[str, Any] = {}
            for field in spec.fields:
                self._field(sub, field, groups)

    @staticmethod
    def _field(parser: CommandParser, field: FieldSpec, groups: dict[str, Any]) -> None:
        """One option of a kind's field: its help is the spec's first sentence."""
        options: dict[str, Any] = {
            "dest": field.name,
            # The first sentence, whatever the language's full stop.
            "help": re.split(r"\. |。", str(field.help))[0],
        }
        if field.type == "users":
            options.update(nargs="+", action="extend", default=[], metavar="USER")
        if field.one_of:
            # Fields sharing one_of: exactly one of them is given.
            if field.one_of not in groups:
                groups[field.one_of] = parser.add_mutually_exclusive_group(
                    required=True
                )
            groups[field.one_of].add_argument(field.cli_option, **options)
            return
        required = field.required if field.cli_required is None else field.cli_required
        parser.add_argument(field.cli_option, required=required, **options)

    @staticmethod
    def _common(parser: CommandParser) -> None:
        parser.add_argument("--app", required=True, help=_("provider app name"))
        parser.add_argument(
            "--as",
            dest="actor",
            required=True,
            metavar="USERNAME",
            help=_("the LiveAdmin user sending (must be a community manager)"),
        )

    @staticmethod
    def _room(parser: CommandParser, *, many: bool = False) -> None:
        if not many:
            parser.add_argument("--room", required=True, help=_("room ID"))
            return
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--room", help=_("room ID"))
        target.add_argument(
            "--rooms-file",
            type=Path,
            metavar="FILE",
            help=_(
                "one room ID per line (up to 10,000; blank lines and duplicates are "
                "skipped): sent as a batch through the workers and the rate limiter"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kind: str = options["kind"]
        actor = self._actor(options["actor"])
        app = self._app(options["app"])
        fields = {
            field: options.get(option)
            for field, option in FIELD_OPTIONS[kind].items()
            if options.get(option) is not None
        }
        if options.get("rooms_file"):
            self._send_batch(app, kind, fields, options["rooms_file"], actor=actor)
            return
        # Every request is built (and so validated) before the first one goes out:
        # bad input sends nothing.
        bodies = []
        for room in self.rooms(kind, options):
            if room is not None:
                fields = {**fields, "room_id": room}
            try:
                bodies.append(build_request(app, kind, fields))
            except SendValidationError as exc:
                raise CommandError(self._describe(exc), returncode=2) from None

        failures = 0
        for body in bodies:
            record = record_send(app, kind, body, actor=actor)
            # The JSON lines are machine-readable: their explanations stay English.
            with translation.override("en"):
                result = deliver(record)
            failures += not result.ok
            self.stdout.write(json.dumps(self._line(record, result)))
        if failures:
            raise CommandError(
                ngettext(
                    "%(failures)s of %(total)s send did not succeed",
                    "%(failures)s of %(total)s sends did not succeed",
                    len(bodies),
                )
                % {"failures": failures, "total": len(bodies)},
                returncode=1,
            )

    def _send_batch(
        self, app: ProviderApp, kind: str, fields: dict, path: Path, *, actor: Any
    ) -> None:
        """Send to every room of the file as one batch (the browser's bulk path:
        Celery workers or the embedded pool, the shared rate limit, retries with
        backoff, the audit log), wait for it, and print one line per room."""
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(
                _("--rooms-file: cannot read %(path)s: %(error)s")
                % {"path": path, "error": exc},
                returncode=2,
            ) from None
        parsed = parse_room_ids(text, provider=app.provider)
        if parsed.invalid:
            room, reason = parsed.invalid[0]
            raise CommandError(
                _(
                    "--rooms-file: %(count)s invalid room ID(s), e.g. %(room)s: "
                    "%(reason)s (nothing was sent)"
                )
                % {"count": len(parsed.invalid), "room": repr(room), "reason": reason},
                returncode=2,
            )
        if not parsed.rooms:
            raise CommandError(_("--rooms-file: no room IDs in the file"), returncode=2)
        if parsed.too_many:
            raise CommandError(
                _(
                    "--rooms-file: %(count)s rooms; at most %(max)s per batch "
                    "(nothing was sent)"
                )
                % {"count": f"{len(parsed.rooms):,}", "max": f"{MAX_ROOMS:,}"},
                returncode=2,
            )
        try:
            batch = batches.start_batch(app, kind, fields, parsed.rooms, actor=actor)
        except SendValidationError as exc:
            raise CommandError(self._describe(exc), returncode=2) from None
        batch = self._wait(batch)
        records = list(batch.records.order_by("id"))
        for record in records:
            # One app object, not one (and one secret decrypted) per row.
            record.app = app
        with translation.override("en"):
            results = [(record, result_from_record(record)) for record in records]
        self.stdout.write(
            "\n".join(
                json.dumps(self._line(record, result)) for record, result in results
            )
        )
        progress = batch.progress()
        summary = {
            "summary": True,
            "batch": batch.pk,
            "status": batch.status,
            "rooms": progress["total"],
            "ok": progress["ok"],
            "failed": progress["failed"],
            "dropped": progress["dropped"],
            "unknown": progress["unknown"],
            "cancelled": progress["cancelled"],
            "waiting": progress["waiting"],
            "duplicates_skipped": len(parsed.duplicates),
            "blank_lines": parsed.blank_lines,
        }
        if batch.status == BatchStatus.PAUSED:
            summary["pause_reason"] = batch.pause_reason
        self.stdout.write(json.dumps(summary))
        not_ok = progress["total"] - progress["ok"]
        if not_ok:
            values = {"failures": not_ok, "total": progress["total"]}
            if batch.status == BatchStatus.PAUSED:
                message = _(
                    "%(failures)s of %(total)s rooms did not succeed (batch paused; "
                    "resume it on its page)"
                )
            else:
                message = _("%(failures)s of %(total)s rooms did not succeed")
            raise CommandError(message % values, returncode=1)

    @staticmethod
    def _wait(batch: Batch, *, poll: float = 0.02) -> Batch:
        """Block until the batch is done, cancelled or paused (the workers, or this
        process's embedded pool, send it meanwhile)."""
        while True:
            batch.refresh_from_db()
            if batch.is_finished or batch.status == BatchStatus.PAUSED:
                return batch
            if batch.status == BatchStatus.RUNNING and batches.finish_if_complete(
                batch.pk
            ):
                continue
            time.sleep(poll)

    def rooms(self, kind: str, options: dict[str, Any]) -> list[str | None]:
        """The rooms to send to: one per send. A broadcast goes to no room in particular.

        (A ``--rooms-file`` option extends this list.)
        """
        if KINDS[kind].target == "app":
            return [None]
        return [options["room"]]

    def _actor(self, username: str) -> Any:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                _("--as: no user named %(name)s") % {"name": repr(username)},
                returncode=2,
            )
        if not user.is_active:
            raise CommandError(
                _("--as: the user %(name)s is inactive") % {"name": repr(username)},
                returncode=2,
            )
        if not has_role(user, Role.MANAGER):
            raise CommandError(
                _("--as: the user %(name)s is not a %(role)s")
                % {"name": repr(username), "role": Role.MANAGER.value},
                returncode=2,
            )
        return user

    def _app(self, name: str) -> ProviderApp:
        app = ProviderApp.objects.filter(name=name).first()
        if app is None:
            known = ", ".join(ProviderApp.objects.values_list("name", flat=True)) or _(
                "none"
            )
            raise CommandError(
                _("--app: no app named %(name)s (apps: %(known)s)")
                % {"name": repr(name), "known": known},
                returncode=2,
            )
        return app

    @staticmethod
    def _describe(exc: SendValidationError) -> str:
        option = {
            "room_id": "--room",
            "from_account": "--from",
            "from_user": "--from",
            "to_users": "--to",
            "__all__": "",
        }
        parts = []
        for field, messages in exc.errors.items():
            name = option.get(field, "--" + field.replace("_", "-"))
            parts.append(
                f"{name}: {' '.join(messages)}" if name else " ".join(messages)
            )
        return _("%(problems)s (nothing was sent)") % {"problems": "; ".join(parts)}

    @staticmethod
    def _line(record: SendRecord, result: SendResult) -> dict[str, Any]:
        return {
            "ok": result.ok,
            "outcome": str(result.outcome),
            "error_code": result.error_code,
            "error_info": result.error_info,
            "request_id": result.request_id,
            "msg_seq": result.msg_seq,
            "msg_time": result.msg_time,
            "drop_reason": result.drop_reason,
            "explanation": result.explanation,
            "retryable": result.retryable,
            "record": record.pk,
            "room_id": record.room_id,
        }
