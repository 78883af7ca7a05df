"""moderation queue|mute|unmute|escalation|dryrun: moderation from scripts.

Prints one JSON object per line (always English: scripts read it); bad input exits
with status 2 and a message in the active language.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from messaging.models import ProviderApp
from webhooks import dryrun, moderation, services


def _bad(message: str) -> CommandError:
    return CommandError(message, returncode=2)


def _invalid(exc: ValidationError) -> CommandError:
    if hasattr(exc, "message_dict"):
        text = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    else:
        text = " ".join(exc.messages)
    return _bad(text)


class Command(BaseCommand):
    # Marked here, translated in add_arguments (argparse needs a str).
    help = gettext_noop(
        "Review queue, mutes, escalation rules and dry runs from scripts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.description = _(self.help)
        sub = parser.add_subparsers(dest="subcommand", required=True)

        queue = sub.add_parser("queue", help=_("print the review queue, newest first"))
        queue.add_argument("--app", help=_("provider app name (default: every app)"))
        queue.add_argument("--limit", type=int, default=1000)

        mute = sub.add_parser("mute", help=_("mute a sender"))
        mute.add_argument("--app", required=True)
        mute.add_argument("--user", required=True, help=_("the sender's user ID"))
        mute.add_argument(
            "--room", default="", help=_("one room (default: every room)")
        )
        mute.add_argument(
            "--minutes", type=int, required=True, help=_("0 = permanently")
        )
        mute.add_argument("--reason", default="")
        mute.add_argument(
            "--as", dest="username", help=_("user recorded in the history")
        )

        unmute = sub.add_parser("unmute", help=_("lift a sender's mutes"))
        unmute.add_argument("--app", required=True)
        unmute.add_argument("--user", required=True)
        unmute.add_argument("--room", help=_("one room's mute (default: every mute)"))
        unmute.add_argument("--as", dest="username")

        esc = sub.add_parser("escalation", help=_("set the app's escalation rule"))
        esc.add_argument("--app", required=True)
        esc.add_argument("--hits", type=int, required=True)
        esc.add_argument("--within", type=int, required=True, help=_("seconds"))
        what = esc.add_mutually_exclusive_group(required=True)
        what.add_argument(
            "--mute", type=int, help=_("mute for MINUTES (0 = permanent)")
        )
        what.add_argument(
            "--flag", type=int, help=_("flag everything from them for MINUTES")
        )
        esc.add_argument("--room-only", action="store_true")
        esc.add_argument("--disable", action="store_true")
        esc.add_argument("--as", dest="username")

        dry = sub.add_parser(
            "dryrun", help=_("what a draft entry would change in recent traffic")
        )
        dry.add_argument("--app", required=True)
        dry.add_argument("--term", required=True)
        dry.add_argument("--kind", default="word", choices=services.KINDS)
        dry.add_argument("--action", default="forbid", choices=services.ACTIONS)
        dry.add_argument("--code", type=int)
        dry.add_argument("--info", default="")
        dry.add_argument("--examples", type=int, default=5)

    def handle(self, *args: Any, **opts: Any) -> None:
        getattr(self, "do_" + opts["subcommand"])(opts)

    def _emit(self, obj: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(obj, ensure_ascii=False))

    def _app(self, name: str) -> ProviderApp:
        app = ProviderApp.objects.filter(name=name).first()
        if app is None:
            raise _bad(_("no app called %(name)s") % {"name": repr(name)})
        return app

    def _actor(self, opts: dict[str, Any]) -> Any:
        username = opts.get("username")
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise _bad(_("no user called %(name)s") % {"name": repr(username)})
        return user

    def do_queue(self, opts: dict[str, Any]) -> None:
        app = self._app(opts["app"]) if opts["app"] else None
        for decision in moderation.review_queue(app)[: opts["limit"]]:
            self._emit(moderation.queue_row(decision))

    def do_mute(self, opts: dict[str, Any]) -> None:
        app, actor = self._app(opts["app"]), self._actor(opts)
        try:
            sanction = moderation.mute_sender(
                app,
                opts["user"],
                minutes=opts["minutes"],
                room_id=opts["room"],
                reason=opts["reason"],
                actor=actor,
            )
        except ValidationError as exc:
            raise _invalid(exc) from None
        self._emit({"muted": True, **moderation.sanction_row(sanction)})

    def do_unmute(self, opts: dict[str, Any]) -> None:
        app, actor = self._app(opts["app"]), self._actor(opts)
        lifted = moderation.unmute_sender(
            app, opts["user"], room_id=opts["room"], actor=actor
        )
        if not lifted:
            if opts["room"] is None:
                message = _("%(user)s has no active mute in %(app)s") % {
                    "user": repr(opts["user"]),
                    "app": app.name,
                }
            else:
                message = _("%(user)s has no active mute in %(app)s room %(room)s") % {
                    "user": repr(opts["user"]),
                    "app": app.name,
                    "room": repr(opts["room"]),
                }
            raise CommandError(message, returncode=1)
        for sanction in lifted:
            self._emit({"unmuted": True, **moderation.sanction_row(sanction)})

    def do_escalation(self, opts: dict[str, Any]) -> None:
        app, actor = self._app(opts["app"]), self._actor(opts)
        kind = "mute" if opts["mute"] is not None else "flag"
        minutes = opts["mute"] if kind == "mute" else opts["flag"]
        try:
            rule = moderation.set_escalation(
                app,
                hits=opts["hits"],
                within_seconds=opts["within"],
                minutes=minutes,
                sanction=kind,
                room_only=opts["room_only"],
                enabled=not opts["disable"],
                actor=actor,
            )
        except ValidationError as exc:
            raise _invalid(exc) from None
        self._emit(moderation.escalation_row(rule))

    def do_dryrun(self, opts: dict[str, Any]) -> None:
        app = self._app(opts["app"])
        values, errors = services.clean_entry(
            kind=opts["kind"],
            term=opts["term"],
            action=opts["action"],
            code=opts["code"],
            info=opts["info"],
        )
        if errors:
            raise _invalid(ValidationError(errors))
        result = dryrun.dry_run(app, [values], max_examples=opts["examples"])
        self._emit({"app": app.name, "term": values["term"], **result.as_dict()})
