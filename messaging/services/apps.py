"""Provider apps: the validation every way of saving an app shares, and saving one.

The dashboard's app form and the ``addapp`` command both validate through these
functions, so the page and the command line accept the same input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.translation import gettext as _

from messaging import providers
from messaging.models import ProviderApp

MAX_APP_ID = 2**32 - 1


def resolve_region(provider: str, region: str) -> str:
    """Accept a region key ("silicon-valley") or its label ("Silicon Valley")."""
    wanted = region.strip().lower()
    for key, (label, _domain) in providers.regions(provider).items():
        if wanted in (key, label.lower(), label.lower().replace(" ", "-")):
            return key
    return region


def clean_app_id(raw: str) -> int:
    """The numeric SDKAppID / AppId, 1..4294967295. Raises ValidationError."""
    raw = raw.strip()
    if not raw.isdigit():
        raise ValidationError(_("The SDKAppID must be a number, digits only."))
    value = int(raw)
    if value <= 0 or value > MAX_APP_ID:
        raise ValidationError(_("The SDKAppID must be between 1 and 4294967295."))
    return value


def clean_identifier(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValidationError(_("The admin identifier cannot be empty."))
    return value


def clean_base_url(raw: str) -> str:
    """An http(s) URL without its trailing slash, or "" (the region's domain)."""
    value = raw.strip()
    if not value:
        return ""
    if not value.lower().startswith(("http://", "https://")):
        raise ValidationError(_("The base URL must start with http:// or https://."))
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        raise ValidationError(
            _("Enter a full URL, like https://api.example.com/im.")
        ) from None
    return value.rstrip("/")


def region_error(provider: str, region: str) -> str | None:
    """Why ``region`` is not one of ``provider``'s regions, or None."""
    known = providers.regions(provider)
    if region in known or provider not in providers.PROVIDERS:
        return None  # an unknown provider: the provider field reports it
    labels = ", ".join(str(label) for label, _domain in known.values())
    return _("Pick a %(provider)s region: %(regions)s.") % {
        "provider": providers.provider(provider).LABEL,
        "regions": labels,
    }


@transaction.atomic
def save_app(
    name: str,
    *,
    provider: str,
    app_id: str,
    region: str,
    identifier: str,
    secret_key: str = "",
    webhook_token: str = "",
    base_url: str = "",
    test_environment: bool | None = None,
) -> tuple[ProviderApp, bool]:
    """Create the app called ``name``, or update it if it exists.

    Empty secrets on update keep the stored ones; ``test_environment`` None keeps
    the stored choice (ZEGO's IsTest). Raises ValidationError (keyed by
    field) and then saves nothing.
    """
    existing = ProviderApp.objects.select_for_update().filter(name=name).first()
    app = existing or ProviderApp(name=name)
    errors: dict[str, list[str]] = {}

    def check(field: str, clean: Callable[[str], Any], raw: str) -> Any:
        try:
            return clean(raw)
        except ValidationError as exc:
            errors[field] = exc.messages
            return None

    app.provider = provider
    app.region = resolve_region(provider, region)
    parsed_id = check("app_id", clean_app_id, app_id)
    if parsed_id is not None:
        app.app_id = parsed_id
    app.identifier = check("identifier", clean_identifier, identifier) or ""
    app.base_url = check("base_url", clean_base_url, base_url) or ""
    problem = region_error(provider, app.region)
    if problem:
        errors["region"] = [problem]
    secret_key = secret_key.strip()
    if secret_key:
        app.secret_key = secret_key
    elif existing is None:
        errors["secret_key"] = [_("This field is required.")]
    if test_environment is not None:
        app.test_environment = test_environment
    if webhook_token.strip():
        app.webhook_token = webhook_token.strip()
    try:
        app.full_clean(exclude=list(errors) or None)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, messages)
    if errors:
        raise ValidationError(errors)
    app.save()
    return app, existing is None
