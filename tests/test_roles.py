from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from liveadmin.navigation import nav_for
from liveadmin.roles import ROLE_PERMISSIONS, Role, user_roles

pytestmark = pytest.mark.django_db


def test_it_creates_the_four_role_groups():
    names = set(Group.objects.values_list("name", flat=True))
    assert {"community manager", "moderator", "auditor", "administrator"} <= names


def test_it_gives_each_group_its_permissions():
    admin_group = Group.objects.get(name="administrator")
    perms = {
        f"{p.content_type.app_label}.{p.codename}"
        for p in admin_group.permissions.all()
    }
    assert "messaging.change_providerapp" in perms
    manager_perms = {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name="community manager").permissions.all()
    }
    assert "messaging.change_providerapp" not in manager_perms
    for role, listed in ROLE_PERMISSIONS.items():
        held = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=role.value).permissions.all()
        }
        assert held <= set(listed)


def test_it_reads_roles_from_groups(users):
    assert user_roles(users["manager"]) == {Role.MANAGER}
    assert user_roles(users["admin"]) == {Role.ADMIN}
    assert user_roles(users["outsider"]) == frozenset()


def test_it_shows_each_role_only_its_navigation():
    admin_labels = [
        label for _, items in nav_for(frozenset({Role.ADMIN})) for label, _ in items
    ]
    assert "Provider apps" in admin_labels
    manager_labels = [
        label for _, items in nav_for(frozenset({Role.MANAGER})) for label, _ in items
    ]
    assert "Provider apps" not in manager_labels
    assert nav_for(frozenset()) == []
