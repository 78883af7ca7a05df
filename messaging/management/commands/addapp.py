from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from liveadmin.roles import Role, has_role
from messaging.management.base import TranslatedCommand
from messaging.services.apps import save_app
from messaging.services.credentials import check_credentials


class Command(TranslatedCommand):
    help = gettext_noop(
        "Create or update a provider app. The secret key is read from the LIVEADMIN_SECRET "
        "environment variable or from standard input, never from an argument."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "name", help=_("display name of the app (the key for updates)")
        )
        parser.add_argument("--provider", required=True, choices=["tencent", "zego"])
        parser.add_argument(
            "--app-id", required=True, help=_("SDKAppID (Tencent) or AppId (ZEGO)")
        )
        parser.add_argument(
            "--region",
            required=True,
            help=_("e.g. singapore, china, silicon-valley; ZEGO: global, sgp..."),
        )
        parser.add_argument(
            "--identifier",
            required=True,
            help=_("admin account (Tencent) / default sender (ZEGO)"),
        )
        parser.add_argument(
            "--base-url",
            default="",
            help=_("API base URL override (private deployment, sandbox)"),
        )
        parser.add_argument(
            "--test-environment",
            action=argparse.BooleanOptionalAction,
            default=None,
            help=_("ZEGO: the project's test environment (IsTest=true, 10 requests/s)"),
        )
        parser.add_argument(
            "--webhook-token-env",
            metavar="VAR",
            default="",
            help=_("name of an environment variable holding the webhook token"),
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help=_(
                "then check the credentials with one harmless call (exit 1 if refused)"
            ),
        )
        parser.add_argument(
            "--as",
            dest="actor",
            metavar="USERNAME",
            default="",
            help=_("with --check: the administrator the check is logged as"),
        )

    def handle(self, *args, **options) -> None:
        actor = _administrator(options["actor"]) if options["check"] else None
        secret = os.environ.get("LIVEADMIN_SECRET", "")
        if not secret and not sys.stdin.isatty():
            secret = sys.stdin.read().strip()
        token = ""
        if options["webhook_token_env"]:
            token = os.environ.get(options["webhook_token_env"], "")
            if not token:
                raise CommandError(
                    _("environment variable %(name)s is empty or unset")
                    % {"name": options["webhook_token_env"]},
                    returncode=2,
                )
        try:
            app, created = save_app(
                options["name"],
                provider=options["provider"],
                app_id=options["app_id"],
                region=options["region"],
                identifier=options["identifier"],
                secret_key=secret,
                webhook_token=token,
                base_url=options["base_url"],
                test_environment=options["test_environment"],
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()
            )
            if "secret_key" in exc.message_dict:
                problems = _(
                    "%(problems)s (pass the secret in LIVEADMIN_SECRET or on standard input)"
                ) % {"problems": problems}
            raise CommandError(problems, returncode=2) from None
        self.stdout.write(
            json.dumps(
                {
                    "ok": True,
                    "created": created,
                    "id": app.pk,
                    "name": app.name,
                    "provider": app.provider,
                    "app_id": app.app_id,
                    "region": app.region,
                    "identifier": app.identifier,
                    "api_base_url": app.api_base_url,
                    "webhook_token": app.has_webhook_token,
                    "test_environment": app.test_environment,
                    "enabled": app.enabled,
                }
            )
        )
        if actor is not None:
            # The JSON line is machine-readable: its explanation and hint stay English.
            with translation.override("en"):
                result = check_credentials(app, actor=actor)
                hint = result.hint
            self.stdout.write(
                json.dumps(
                    {
                        "ok": result.ok,
                        "check": result.verdict,
                        "error_code": result.error_code,
                        "error_info": result.error_info,
                        "explanation": result.explanation,
                        "hint": hint,
                        "record": result.record.pk,
                    }
                )
            )
            if not result.ok:
                raise CommandError(
                    _("credentials %(verdict)s") % {"verdict": result.verdict},
                    returncode=1,
                )


def _administrator(username: str) -> Any:
    if not username:
        raise CommandError(
            _("--check needs --as USERNAME (an administrator)"), returncode=2
        )
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None or not has_role(user, Role.ADMIN):
        raise CommandError(
            _("%(name)s is not an active administrator") % {"name": repr(username)},
            returncode=2,
        )
    return user
