"""Small factories: defaults with setdefault, overrides as keyword arguments."""

from __future__ import annotations

import itertools
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from liveadmin.roles import Role
from messaging.models import ProviderApp

_seq = itertools.count(1)
PASSWORD = "pass-for-tests"


def make_user(username: str | None = None, *, role: Role | None = None, **fields: Any):
    User = get_user_model()
    fields.setdefault("is_superuser", role is Role.ADMIN)
    fields.setdefault("is_staff", role is Role.ADMIN)
    user = User.objects.create_user(
        username or f"user{next(_seq)}", password=PASSWORD, **fields
    )
    if role is not None:
        user.groups.add(Group.objects.get(name=role.value))
    return user


def make_app(**fields: Any) -> ProviderApp:
    n = next(_seq)
    fields.setdefault("name", f"app-{n}")
    fields.setdefault("provider", "tencent")
    fields.setdefault("app_id", 1400000000 + n)
    fields.setdefault(
        "region", "singapore" if fields["provider"] == "tencent" else "global"
    )
    fields.setdefault("identifier", "administrator")
    fields.setdefault("secret_key", f"secret-key-{n}-0123456789abcdef")
    return ProviderApp.objects.create(**fields)


def make_sandbox_app(
    app: ProviderApp, *, rooms: tuple[str, ...] = ("room-1",), callback_url: str = ""
):
    """Mirror ``app`` into the sandbox provider with ``rooms`` created."""
    from messaging.sandbox.services import mirror_provider_app

    return mirror_provider_app(app, rooms=rooms, callback_url=callback_url)
