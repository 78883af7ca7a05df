from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from messaging.forms import ProviderAppForm
from messaging.models import ProviderApp
from messaging.providers.regions import REGIONS


def resolve_region(provider: str, region: str) -> str:
    """Accept a region key ("silicon-valley") or its label ("Silicon Valley")."""
    wanted = region.strip().lower()
    for key, (label, _) in REGIONS.get(provider, {}).items():
        if wanted in (key, label.lower(), label.lower().replace(" ", "-")):
            return key
    return region


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
) -> tuple[ProviderApp, bool]:
    """Create the app called ``name``, or update it if it exists.

    Validation is the dashboard form's, so the command line and the page accept the
    same input. Empty secrets on update keep the stored ones. Raises ValidationError.
    """
    existing = ProviderApp.objects.select_for_update().filter(name=name).first()
    data = {
        "name": name,
        "provider": provider,
        "app_id": app_id,
        "region": resolve_region(provider, region),
        "identifier": identifier,
        "secret_key": secret_key,
        "webhook_token": webhook_token,
        "base_url": base_url,
        "rate_limit": existing.rate_limit if existing and existing.rate_limit else "",
        "broadcast_requires_approval": existing.broadcast_requires_approval
        if existing
        else False,
        "webhook_fail_closed": existing.webhook_fail_closed if existing else False,
    }
    form = ProviderAppForm(data, instance=existing)
    if not form.is_valid():
        raise ValidationError(
            {field: [str(e) for e in errors] for field, errors in form.errors.items()}
        )
    return form.save(), existing is None
