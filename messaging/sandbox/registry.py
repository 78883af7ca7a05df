"""The sandbox's provider registry: provider name -> the sandbox module that stands in
for it.

The sandbox's counterpart of ``messaging.providers.PROVIDERS``, kept apart on purpose:
the sandbox is an independent implementation written from the providers' pages, and
shares no code with the clients, so a bug in one cannot hide in the other. The sandbox
URLs, the sandbox app's provider choices and the endpoint list of the sandbox page are
all read from here. Modules are imported on first use (the models import this module,
and the provider modules import the models).

A sandbox provider module exposes:

- ``LABEL``: the name shown to people;
- ``BASE_PATH``: where its API lives under /sandbox/ ("" for the root), i.e. the base
  URL an app is given to send to the sandbox;
- ``ENDPOINTS``: the requests it answers, for the sandbox page ("POST /v4/...");
- ``urlpatterns``: its endpoints' URL patterns (paths relative to /sandbox/), served
  by views in the same module.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from django.urls import URLPattern

SANDBOX_PROVIDERS: dict[str, str] = {
    "tencent": "messaging.sandbox.tencent",
    "zego": "messaging.sandbox.zego",
}


def sandbox_provider(name: str) -> ModuleType:
    """The sandbox module of provider ``name``. KeyError for an unknown name."""
    return importlib.import_module(SANDBOX_PROVIDERS[name])


def provider_choices() -> list[tuple[str, str]]:
    """(name, label) of every sandbox provider, for SandboxApp.provider (a callable:
    a new provider needs no migration)."""
    return [(name, sandbox_provider(name).LABEL) for name in SANDBOX_PROVIDERS]


def urlpatterns() -> list[URLPattern]:
    """Every sandbox provider's endpoint URL patterns, for messaging/sandbox/urls.py."""
    patterns: list[URLPattern] = []
    for name in SANDBOX_PROVIDERS:
        patterns.extend(sandbox_provider(name).urlpatterns)
    return patterns


def endpoints(sandbox_url: str) -> list[tuple[str, str, list[str]]]:
    """(label, base URL, endpoint lines) of every provider, given the sandbox's URL."""
    answer = []
    for name in SANDBOX_PROVIDERS:
        module = sandbox_provider(name)
        base = "/".join(
            part for part in (sandbox_url.rstrip("/"), module.BASE_PATH) if part
        )
        lines = []
        for endpoint in module.ENDPOINTS:
            method, _, path = endpoint.partition(" ")
            lines.append(f"{method} {base}{path}")
        answer.append((module.LABEL, base, lines))
    return answer
