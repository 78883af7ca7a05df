"""The provider registry: provider name -> the module that speaks to it.

Like healthchecks' ``TRANSPORTS`` (``hc/api/models.py``), one mapping is the only
place that lists the providers; everything else (the app form's choices, regions and
API domains, the kinds an app can send, building, sending, explaining answers) goes
through ``provider()``. Modules are imported on first use, so importing this package
(models do) loads no HTTP client.

A provider module exposes:

- ``LABEL``: the name shown to people;
- ``REGIONS``: region key -> (label, API domain);
- ``KINDS``: the kinds it sends (``messaging.kinds.kinds_of(name)``);
- ``build_body(kind, fields, *, default_sender) -> (body, errors by field)``;
- ``send(credentials, kind, body) -> SendResult`` (through ``base.call``);
- ``explain(code) -> str`` and ``drop_explanation(reason) -> str``;
- for "Check credentials" (messaging/services/credentials.py): ``CHECK_KIND``,
  ``check_fields(room_id, identifier)`` (a message to a room that cannot exist), and
  the answer codes that mean the credentials were accepted (``CHECK_ACCEPTED``) or
  refused (``CHECK_REFUSED``).

Adding a provider: its module here, its line in ``PROVIDERS``, and its sandbox
module with its line in ``SANDBOX_PROVIDERS`` (messaging/sandbox/registry.py, the
sandbox's own registry); a new message kind also needs its spec in messaging/kinds.py.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

    from messaging.providers.base import Credentials, SendResult

PROVIDERS: dict[str, str] = {
    "tencent": "messaging.providers.tencent",
    "zego": "messaging.providers.zego",
}


def provider(name: str) -> ModuleType:
    """The module of provider ``name`` (imported once). KeyError for an unknown name."""
    return importlib.import_module(PROVIDERS[name])


def provider_choices() -> list[tuple[str, str]]:
    """(name, label) of every provider, for the app form and the model field."""
    return [(name, provider(name).LABEL) for name in PROVIDERS]


def regions(name: str) -> dict[str, tuple[StrOrPromise, str]]:
    """Region key -> (label, API domain) of provider ``name``; {} if unknown."""
    if name not in PROVIDERS:
        return {}
    return provider(name).REGIONS


def region_choices() -> list[tuple[str, list[tuple[str, StrOrPromise]]]]:
    """Regions grouped by provider label, for the app form and the model field."""
    return [
        (
            provider(name).LABEL,
            [(key, label) for key, (label, _) in regions(name).items()],
        )
        for name in PROVIDERS
    ]


def api_domain(name: str, region: str) -> str:
    return regions(name)[region][1]


def kinds(name: str) -> list[str]:
    """The kinds provider ``name`` sends; [] if unknown."""
    if name not in PROVIDERS:
        return []
    return [str(kind) for kind in provider(name).KINDS]


def build_body(
    name: str, kind: str, fields: dict[str, Any], *, default_sender: str = ""
) -> tuple[dict, dict[str, list[str]]]:
    """The exact request of ``kind`` (no secret in it) and the errors by field."""
    return provider(name).build_body(kind, fields, default_sender=default_sender)


def send(credentials: Credentials, kind: str, body: dict) -> SendResult:
    """Send a body built by ``build_body`` and classify the answer."""
    if kind not in kinds(credentials.provider):
        raise ValueError(f"{credentials.provider} cannot send {kind!r}")
    return provider(credentials.provider).send(credentials, kind, body)


def explain(name: str, code: int | None) -> str:
    """A human explanation of a provider's result code, for the UI."""
    if name not in PROVIDERS:
        return ""
    return provider(name).explain(code)


def explain_drop(name: str, drop_reason: str) -> str:
    """Why an accepted send was not delivered (outcome ``dropped``)."""
    return provider(name).drop_explanation(drop_reason)
