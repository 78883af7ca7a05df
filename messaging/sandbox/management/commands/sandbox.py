from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from messaging.models import ProviderApp
from messaging.sandbox import services
from messaging.sandbox.models import MutedMember, SandboxApp, SandboxRoom


def _bad(message: str) -> CommandError:
    return CommandError(message, returncode=2)


# English here (`manage.py help` lists it); --help shows it in the active language.
HELP = gettext_noop(
    "Manage the sandbox provider: mirror a dashboard app into it, create rooms, "
    "mute members, read what a room received. Prints one JSON object per line."
)


class Command(BaseCommand):
    help = HELP

    def add_arguments(self, parser: CommandParser) -> None:
        parser.description = _(HELP)
        areas = parser.add_subparsers(dest="area", required=True)

        app = areas.add_parser("app", help=_("sandbox apps")).add_subparsers(
            dest="action", required=True
        )
        sync = app.add_parser("sync", help=_("mirror a dashboard app into the sandbox"))
        sync.add_argument("--app", required=True, help=_("dashboard app name"))
        sync.add_argument(
            "--room", action="append", default=[], help=_("also create this room")
        )
        sync.add_argument(
            "--callback-url",
            default="",
            help=_(
                "before/after-send webhook URL (default: this site's /webhooks/tencent)"
            ),
        )
        sync.add_argument(
            "--failure-policy",
            choices=["deliver", "reject"],
            help=_(
                "what to do when the before-send webhook fails (reject answers 80003)"
            ),
        )
        app.add_parser("list", help=_("list sandbox apps"))

        room = areas.add_parser("room", help=_("sandbox rooms")).add_subparsers(
            dest="action", required=True
        )
        create = room.add_parser("create", help=_("create a room"))
        create.add_argument("--app", required=True)
        create.add_argument("room_id", metavar="ROOM")
        create.add_argument(
            "--not-live",
            action="store_true",
            help=_("a room that is not live (100006)"),
        )
        destroy = room.add_parser("destroy", help=_("destroy a room and its messages"))
        destroy.add_argument("--app", required=True)
        destroy.add_argument("room_id", metavar="ROOM")
        listing = room.add_parser("list", help=_("list the rooms of an app"))
        listing.add_argument("--app", required=True)

        member = areas.add_parser("member", help=_("muted members")).add_subparsers(
            dest="action", required=True
        )
        mute = member.add_parser("mute", help=_("mute a member in a room"))
        mute.add_argument("--app", required=True)
        mute.add_argument("--room", required=True)
        mute.add_argument("account", metavar="USER")
        mute.add_argument(
            "--seconds",
            type=int,
            default=600,
            help=_("0 unmutes; 4294967295 = for ever"),
        )
        unmute = member.add_parser("unmute", help=_("unmute a member"))
        unmute.add_argument("--app", required=True)
        unmute.add_argument("--room", required=True)
        unmute.add_argument("account", metavar="USER")

        msgs = areas.add_parser(
            "messages", help=_("what a room received, newest first")
        )
        msgs.add_argument("--app", required=True)
        msgs.add_argument("--room", required=True)
        msgs.add_argument("--limit", type=int, default=20)

    def _emit(self, **fields: Any) -> None:
        self.stdout.write(json.dumps(fields, ensure_ascii=False))

    def _dashboard_app(self, name: str) -> ProviderApp:
        try:
            return ProviderApp.objects.get(name=name)
        except ProviderApp.DoesNotExist:
            raise _bad(_("no app named %(name)s") % {"name": repr(name)}) from None

    def _sandbox_app(self, name: str) -> SandboxApp:
        app = self._dashboard_app(name)
        sandbox = SandboxApp.objects.filter(
            provider=app.provider, app_id=app.app_id
        ).first()
        if sandbox is None:
            raise _bad(
                _(
                    "app %(name)s is not in the sandbox; run: sandbox app sync "
                    "--app %(app)s"
                )
                % {"name": repr(name), "app": name}
            )
        return sandbox

    def _room(self, name: str, room_id: str) -> SandboxRoom:
        try:
            return SandboxRoom.objects.get(app=self._sandbox_app(name), room_id=room_id)
        except SandboxRoom.DoesNotExist:
            raise _bad(
                _("app %(name)s has no sandbox room %(room)s")
                % {"name": repr(name), "room": repr(room_id)}
            ) from None

    def handle(self, *args: Any, **options: Any) -> None:
        handler = getattr(self, f"_{options['area']}_{options.get('action') or 'show'}")
        try:
            handler(options)
        except ValidationError as exc:
            raise _bad(" ".join(exc.messages)) from None

    def _app_sync(self, options: dict) -> None:
        app = self._dashboard_app(options["app"])
        sandbox = services.mirror_provider_app(
            app, rooms=options["room"], callback_url=options["callback_url"]
        )
        if options["failure_policy"]:
            sandbox.failure_policy = options["failure_policy"]
            sandbox.save(update_fields=["failure_policy", "updated_at"])
        self._emit(
            ok=True,
            app=app.name,
            provider=sandbox.provider,
            app_id=sandbox.app_id,
            admins=sandbox.admins,
            callback_url=sandbox.callback_url or "(this site's /webhooks/tencent)",
            callback_token=bool(sandbox.callback_token),
            failure_policy=sandbox.failure_policy,
            rooms=list(sandbox.rooms.values_list("room_id", flat=True)),
        )

    def _app_list(self, options: dict) -> None:
        for sandbox in SandboxApp.objects.prefetch_related("rooms"):
            self._emit(
                provider=sandbox.provider,
                app_id=sandbox.app_id,
                admins=sandbox.admins,
                rooms=[r.room_id for r in sandbox.rooms.all()],
            )

    def _room_create(self, options: dict) -> None:
        sandbox = self._sandbox_app(options["app"])
        room = services.create_room(
            sandbox, options["room_id"], live=not options["not_live"]
        )
        self._emit(ok=True, app=options["app"], room=room.room_id, live=room.live)

    def _room_destroy(self, options: dict) -> None:
        room = self._room(options["app"], options["room_id"])
        services.destroy_room(room.app, room.room_id)
        self._emit(ok=True, app=options["app"], room=room.room_id, destroyed=True)

    def _room_list(self, options: dict) -> None:
        for room in SandboxRoom.objects.filter(app=self._sandbox_app(options["app"])):
            self._emit(
                room=room.room_id,
                live=room.live,
                last_msg_seq=room.last_msg_seq,
                muted=list(
                    MutedMember.objects.active()
                    .filter(room=room)
                    .values_list("account", flat=True)
                ),
            )

    def _member_mute(self, options: dict) -> None:
        room = self._room(options["app"], options["room"])
        if options["seconds"] < 0:
            raise _bad(_("--seconds cannot be negative"))
        muted = services.mute_member(
            room.app, room.room_id, options["account"], options["seconds"]
        )
        self._emit(
            ok=True,
            room=room.room_id,
            account=options["account"].strip(),
            muted_until=muted.until.isoformat() if muted else None,
        )

    def _member_unmute(self, options: dict) -> None:
        room = self._room(options["app"], options["room"])
        services.unmute_member(room.app, room.room_id, options["account"])
        self._emit(
            ok=True,
            room=room.room_id,
            account=options["account"].strip(),
            muted_until=None,
        )

    def _messages_show(self, options: dict) -> None:
        room = self._room(options["app"], options["room"])
        for message in room.messages.all()[: max(options["limit"], 0)]:
            self._emit(
                msg_seq=message.msg_seq,
                msg_time=message.msg_time,
                sender=message.sender,
                kind=message.kind,
                msg_body=message.msg_body,
                cloud_custom_data=message.cloud_custom_data,
                request_id=message.request_id,
            )
