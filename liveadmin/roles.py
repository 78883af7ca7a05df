"""The four roles of LiveAdmin and the server-side checks that enforce them.

A role is a Django group (created by migration 0001_roles). Administrators are
also Django superusers. Views check roles with ``role_required``; templates only
use roles to decide what navigation to show.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise


class Role(StrEnum):
    MANAGER = "community manager"
    MODERATOR = "moderator"
    AUDITOR = "auditor"
    ADMIN = "administrator"

    @property
    def label(self) -> _StrPromise:
        """The role's name in the language of the page (the value is the group's
        name in the database and stays English)."""
        return ROLE_LABELS[self]


ROLE_LABELS: dict[Role, _StrPromise] = {
    Role.MANAGER: _("community manager"),
    Role.MODERATOR: _("moderator"),
    Role.AUDITOR: _("auditor"),
    Role.ADMIN: _("administrator"),
}

# Model permissions each role's group holds ("app_label.codename"). Permissions of
# models that do not exist yet are attached when their app migrates.
ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.MANAGER: [
        "messaging.add_sendrecord",
        "messaging.view_sendrecord",
        "messaging.add_messagetemplate",
        "messaging.change_messagetemplate",
        "messaging.delete_messagetemplate",
        "messaging.view_messagetemplate",
        "messaging.add_batch",
        "messaging.change_batch",
        "messaging.view_batch",
    ],
    Role.MODERATOR: [
        "webhooks.add_blocklist",
        "webhooks.change_blocklist",
        "webhooks.delete_blocklist",
        "webhooks.view_blocklist",
        "webhooks.add_blocklistentry",
        "webhooks.change_blocklistentry",
        "webhooks.delete_blocklistentry",
        "webhooks.view_blocklistentry",
        "webhooks.view_decision",
        "webhooks.change_decision",
        "webhooks.add_sanction",
        "webhooks.change_sanction",
        "webhooks.view_sanction",
        "webhooks.add_escalationrule",
        "webhooks.change_escalationrule",
        "webhooks.delete_escalationrule",
        "webhooks.view_escalationrule",
    ],
    Role.AUDITOR: [
        "messaging.view_sendrecord",
        "webhooks.view_blocklistchange",
    ],
    Role.ADMIN: [
        "messaging.add_providerapp",
        "messaging.change_providerapp",
        "messaging.view_providerapp",
        "auth.add_user",
        "auth.change_user",
        "auth.view_user",
    ],
}

_CACHE_ATTR = "_liveadmin_roles"


def user_roles(user: Any) -> frozenset[Role]:
    """The roles a user holds, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = frozenset(role for role in Role if role.value in names)
        if user.is_superuser:
            cached |= {Role.ADMIN}
        setattr(user, _CACHE_ATTR, cached)
    return cached


def has_role(user: Any, *roles: Role) -> bool:
    return bool(user_roles(user) & set(roles))


def role_required(*roles: Role) -> Callable:
    """Let the request through only for a user holding one of ``roles``.

    Anonymous users go to the login page; signed-in users without the role get 403.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, *roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def sync_role_permissions(app_config: Any = None, **kwargs: Any) -> None:
    """Give each role's group the permissions listed in ROLE_PERMISSIONS.

    Runs after every migrate (and every test database flush), so permissions of models
    added later reach the groups: once, on the last app's post_migrate signal, when
    every app's permissions exist (the signal is sent once per app; running on each
    cost a test flush about a second).
    """
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if app_config is not None and app_config is not with_models[-1]:
        return
    dotted = {perm for perms in ROLE_PERMISSIONS.values() for perm in perms}
    found = {
        f"{perm.content_type.app_label}.{perm.codename}": perm
        for perm in Permission.objects.filter(
            codename__in={name.split(".", 1)[1] for name in dotted}
        ).select_related("content_type")
    }
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        group.permissions.add(*(found[name] for name in perms if name in found))
