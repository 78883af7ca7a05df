from __future__ import annotations

import json
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from liveadmin.roles import Role
from messaging.models import ProviderApp

DEMO_PASSWORD = "liveadmin-demo"
DEMO_USERS = {
    "manager": Role.MANAGER,
    "moderator": Role.MODERATOR,
    "auditor": Role.AUDITOR,
    "admin": Role.ADMIN,
}
DEMO_TENCENT_APP = "demo"
DEMO_ZEGO_APP = "demo-zego"
DEMO_TENCENT_APP_ID = 1400000001
DEMO_ZEGO_APP_ID = 1700000001
# Rooms of the demo apps in the sandbox provider.
DEMO_ROOMS = ["demo-room", "demo-room-2", "lobby"]


# English here (`manage.py help` lists it); --help shows it in the active language.
HELP = gettext_noop(
    "Create the demo users and demo sandbox apps (idempotent: existing data is kept)."
)


class Command(BaseCommand):
    help = HELP

    def add_arguments(self, parser: CommandParser) -> None:
        parser.description = _(HELP)
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000/sandbox",
            help=_("where this site's sandbox is served"),
        )

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        User = get_user_model()
        for username, role in DEMO_USERS.items():
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                if role is Role.ADMIN:
                    user.is_staff = user.is_superuser = True
                user.save()
            user.groups.add(Group.objects.get(name=role.value))
            self.stdout.write(
                json.dumps(
                    {
                        "user": username,
                        "role": role.value,
                        "password": DEMO_PASSWORD if created else "(unchanged)",
                    }
                )
            )

        base = options["base_url"].rstrip("/")
        for name, provider, app_id, region, identifier, url in [
            (
                DEMO_TENCENT_APP,
                "tencent",
                DEMO_TENCENT_APP_ID,
                "singapore",
                "administrator",
                base,
            ),
            (
                DEMO_ZEGO_APP,
                "zego",
                DEMO_ZEGO_APP_ID,
                "global",
                "liveadmin",
                f"{base}/zego",
            ),
        ]:
            app, created = ProviderApp.objects.get_or_create(
                name=name,
                defaults={
                    "provider": provider,
                    "app_id": app_id,
                    "region": region,
                    "identifier": identifier,
                    "secret_key": secrets.token_hex(32),
                    "base_url": url,
                },
            )
            self.stdout.write(
                json.dumps(
                    {"app": app.name, "provider": app.provider, "created": created}
                )
            )
            # The sandbox holds the same credentials, so sends to base_url succeed.
            # Through the sandbox's own command, its public interface.
            rooms = [arg for room in DEMO_ROOMS for arg in ("--room", room)]
            call_command(
                "sandbox", "app", "sync", "--app", app.name, *rooms, stdout=self.stdout
            )
