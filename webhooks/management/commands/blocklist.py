"""blocklist add|import|export|test: manage blocklists from scripts.

Prints one JSON object per line (always English: scripts read it); bad input exits
with status 2 and a message in the active language.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from messaging.models import ProviderApp
from webhooks import services
from webhooks.models import Blocklist
from webhooks.vocabulary import ACTIONS, KINDS


def _bad(message: str) -> CommandError:
    return CommandError(message, returncode=2)


class Command(BaseCommand):
    # Marked here, translated in add_arguments (argparse needs a str).
    help = gettext_noop("Add entries to, import into, export, and test blocklists.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.description = _(self.help)
        sub = parser.add_subparsers(dest="subcommand", required=True)

        def scope(p: CommandParser, *, required: bool = True) -> None:
            group = p.add_mutually_exclusive_group(required=required)
            group.add_argument("--app", help=_("provider app name"))
            group.add_argument(
                "--all-apps",
                action="store_true",
                help=_("the lists shared by all apps"),
            )
            p.add_argument(
                "--list",
                dest="list_name",
                help=_("list name (default: the scope's first list)"),
            )
            p.add_argument(
                "--as", dest="username", help=_("user recorded in the history")
            )

        def flags(p: Any, *, defaults: bool = False) -> None:
            if defaults:
                exact = _(
                    "match this spelling only: no accent or look-alike folding "
                    "(for lines without an exact / leet column)"
                )
                leet = _(
                    "also read digits and symbols as letters (0 o, 1 i l, 3 e, 4 a, "
                    "5 s, 7 t, @ a, $ s) (for lines without an exact / leet column)"
                )
            else:
                exact = _("match this spelling only: no accent or look-alike folding")
                leet = _(
                    "also read digits and symbols as letters (0 o, 1 i l, 3 e, 4 a, "
                    "5 s, 7 t, @ a, $ s)"
                )
            p.add_argument("--exact", action="store_true", help=exact)
            p.add_argument("--leet", action="store_true", help=leet)

        add = sub.add_parser("add", help=_("add one entry"))
        scope(add)
        add.add_argument("--term", required=True)
        add.add_argument("--kind", default="word", choices=KINDS)
        add.add_argument("--action", default="forbid", choices=ACTIONS)
        add.add_argument(
            "--code", type=int, help=_("10100-10200: forbid with this code")
        )
        add.add_argument("--info", default="", help=_("ErrorInfo shown with --code"))
        add.add_argument("--expires", help=_("ISO date and time"))
        add.add_argument("--note", default="")
        flags(add)
        add.add_argument(
            "--review",
            action="store_true",
            help=_("also queue the messages it catches for review"),
        )

        imp = sub.add_parser("import", help=_("import a TXT, CSV or JSONL file"))
        scope(imp)
        imp.add_argument("--file", required=True)
        imp.add_argument("--kind", default="word", choices=KINDS)
        imp.add_argument("--action", default="forbid", choices=ACTIONS)
        flags(imp, defaults=True)

        exp = sub.add_parser(
            "export", help=_("print every entry, one JSON object per line")
        )
        scope(exp)

        test = sub.add_parser("test", help=_("print the decision JSON for a message"))
        test.add_argument("--app", required=True)
        test.add_argument("--text", required=True)
        test.add_argument("--sender", default="user-1")

    def handle(self, *args: Any, **opts: Any) -> None:
        getattr(self, "do_" + opts["subcommand"])(opts)

    # --- helpers -------------------------------------------------------------------
    def _emit(self, obj: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(obj, ensure_ascii=False))

    def _app(self, name: str | None) -> ProviderApp | None:
        if name is None:
            return None
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

    def _list(self, opts: dict[str, Any], *, create: bool) -> Blocklist | None:
        app = self._app(opts.get("app"))
        name = opts.get("list_name")
        if name:
            blocklist = Blocklist.objects.filter(name=name).first()
            if blocklist is None:
                if not create:
                    raise _bad(_("no list called %(name)s") % {"name": repr(name)})
                return services.create_list(name, app=app, actor=self._actor(opts))
            if blocklist.app_id != (app.pk if app else None):
                if blocklist.app is None:
                    raise _bad(
                        _("list %(name)s belongs to all apps") % {"name": repr(name)}
                    )
                raise _bad(
                    _("list %(name)s belongs to %(app)s")
                    % {"name": repr(name), "app": blocklist.app.name}
                )
            return blocklist
        if create:
            return services.default_list(app, actor=self._actor(opts))
        return Blocklist.objects.filter(app=app).order_by("id").first()

    # --- subcommands -----------------------------------------------------------------
    def do_add(self, opts: dict[str, Any]) -> None:
        expires_at = None
        if opts["expires"]:
            expires_at = parse_datetime(opts["expires"])
            if expires_at is None:
                raise _bad(_("--expires must be an ISO date and time"))
        if opts["info"] and opts["code"] is None:
            raise _bad(_("--info goes with --code"))
        actor = self._actor(opts)
        blocklist = self._list(opts, create=True)
        assert blocklist is not None  # create=True always returns a list
        try:
            entry = services.add_entry(
                blocklist,
                term=opts["term"],
                kind=opts["kind"],
                action=opts["action"],
                code=opts["code"],
                info=opts["info"],
                expires_at=expires_at,
                note=opts["note"],
                exact=opts["exact"],
                leet=opts["leet"],
                review=opts["review"],
                actor=actor,
            )
        except ValidationError as exc:
            # A JSON object, like the command's output.
            raise _bad(
                json.dumps({"errors": exc.message_dict}, ensure_ascii=False)
            ) from None
        self._emit(
            {"added": entry.pk, "list": blocklist.name, **services.export_row(entry)}
        )

    def do_import(self, opts: dict[str, Any]) -> None:
        path = Path(opts["file"])
        fmt = path.suffix.lower().lstrip(".")
        if fmt not in ("txt", "csv", "jsonl"):
            raise _bad(_("--file must end in .txt, .csv or .jsonl"))
        try:
            content = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise _bad(
                _("cannot read %(path)s: %(error)s")
                % {"path": path, "error": exc.strerror}
            ) from None
        except UnicodeDecodeError:
            raise _bad(_("%(path)s is not UTF-8 text") % {"path": path}) from None
        actor = self._actor(opts)
        blocklist = self._list(opts, create=True)
        assert blocklist is not None  # create=True always returns a list
        # The refusal reasons go into the JSON lines: English whatever the language.
        with translation.override(None):
            report = services.import_entries(
                blocklist,
                content,
                fmt=fmt,
                actor=actor,
                default_kind=opts["kind"],
                default_action=opts["action"],
                default_exact=opts["exact"],
                default_leet=opts["leet"],
            )
        for row in report.skipped:
            self._emit({"skipped": row})
        for row in report.refused:
            self._emit({"refused": row})
        self._emit({"list": blocklist.name, **report.summary()})

    def do_export(self, opts: dict[str, Any]) -> None:
        app = self._app(opts.get("app"))
        lists = Blocklist.objects.filter(app=app)
        if opts.get("list_name"):
            lists = lists.filter(name=opts["list_name"])
        for entry in services.entries_for_export(lists):
            self._emit({"list": entry.blocklist.name, **services.export_row(entry)})

    def do_test(self, opts: dict[str, Any]) -> None:
        app = self._app(opts["app"])
        assert app is not None  # --app is required here
        result = services.try_message(app, text=opts["text"], sender=opts["sender"])
        self._emit(result.response)
