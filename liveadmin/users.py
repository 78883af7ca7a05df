"""Administrators manage users here: roles are Django groups (liveadmin.roles)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from liveadmin.roles import Role

logger = logging.getLogger(__name__)


def held_roles(user: Any) -> list[Role]:
    """The roles a user's groups give, whether or not the account is active."""
    names = {g.name for g in user.groups.all()}
    return [
        r for r in Role if r.value in names or (r is Role.ADMIN and user.is_superuser)
    ]


def create_user(
    username: str, *, email: str, password: str, roles: Iterable[Role], actor: Any
) -> Any:
    """Create an active user holding ``roles``."""
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.create_user(username, email=email, password=password)
        _apply_roles(user, set(roles))
    logger.info("user %s created by %s", user.pk, actor.pk)
    return user


def update_user(
    user: Any, *, email: str, roles: Iterable[Role], active: bool, actor: Any
) -> Any:
    """Change a user's e-mail, roles and whether they may sign in.

    Administrators cannot take their own administrator role or account away, so the
    last one cannot lock everybody out by a slip.
    """
    roles = set(roles)
    if user.pk == actor.pk and (Role.ADMIN not in roles or not active):
        raise ValidationError(
            _("You cannot remove your own administrator role or deactivate yourself.")
        )
    with transaction.atomic():
        user.email = email
        user.is_active = active
        _apply_roles(user, roles)
    logger.info(
        "user %s updated by %s: roles=%s active=%s",
        user.pk,
        actor.pk,
        sorted(r.name for r in roles),
        active,
    )
    return user


def reset_password(user: Any, password: str, *, actor: Any) -> None:
    """Set a new password (the user's sessions elsewhere end with the old hash)."""
    user.set_password(password)
    user.save(update_fields=["password"])
    logger.info("password of user %s reset by %s", user.pk, actor.pk)


def _apply_roles(user: Any, roles: set[Role]) -> None:
    # Administrators are also superusers (see liveadmin.roles).
    user.is_superuser = user.is_staff = Role.ADMIN in roles
    user.save()
    user.groups.set(Group.objects.filter(name__in=[r.value for r in roles]))
    if hasattr(user, "_liveadmin_roles"):
        del user._liveadmin_roles
