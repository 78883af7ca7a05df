from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from liveadmin.roles import Role, user_roles
from tests.conftest import client_for
from tests.factories import make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-enough-passphrase-42"


def test_it_lists_users_with_their_roles_for_administrators(admin_user, manager):
    response = client_for(admin_user).get("/users/")
    assert response.status_code == 200
    html = response.content.decode()
    assert manager.username in html and "community manager" in html


@pytest.mark.parametrize(
    "path", ["/users/", "/users/new/", "/users/1/", "/users/1/password/"]
)
def test_it_refuses_other_roles_and_sends_anonymous_to_login(users, client, path):
    for name in ("manager", "moderator", "auditor", "outsider"):
        assert client_for(users[name]).get(path).status_code == 403, name
    assert client.get(path).status_code == 302


def test_it_creates_a_user_with_roles(admin_user):
    response = client_for(admin_user).post(
        "/users/new/",
        {
            "username": "manager2",
            "email": "m2@example.com",
            "roles": ["MANAGER", "AUDITOR"],
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    user = User.objects.get(username="manager2")
    assert user.check_password(NEW_PASSWORD)
    assert user_roles(user) == {Role.MANAGER, Role.AUDITOR}
    assert not user.is_superuser


def test_it_keeps_what_was_typed_when_the_form_is_wrong(admin_user):
    response = client_for(admin_user).post(
        "/users/new/",
        {
            "username": "typed-name",
            "email": "not-an-email",
            "roles": ["MODERATOR"],
            "password1": "short",
            "password2": "other",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="typed-name"' in html and 'value="not-an-email"' in html
    assert "Enter a valid email address" in html
    assert not User.objects.filter(username="typed-name").exists()


def test_it_sets_roles_and_deactivates(admin_user, manager):
    response = client_for(admin_user).post(
        f"/users/{manager.pk}/", {"email": "", "roles": ["ADMIN"], "active": ""}
    )
    assert response.status_code == 302
    manager.refresh_from_db()
    assert not manager.is_active and manager.is_superuser
    assert list(manager.groups.values_list("name", flat=True)) == ["administrator"]
    # A deactivated user cannot sign in.
    from django.test import Client

    client = Client()
    response = client.post(
        "/accounts/login/", {"username": manager.username, "password": "pass-for-tests"}
    )
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_it_refuses_to_let_an_administrator_lock_themselves_out(admin_user):
    response = client_for(admin_user).post(
        f"/users/{admin_user.pk}/", {"email": "", "roles": ["MANAGER"], "active": "on"}
    )
    assert response.status_code == 200
    assert "cannot remove your own administrator role" in response.content.decode()
    assert user_roles(User.objects.get(pk=admin_user.pk)) == {Role.ADMIN}


def test_it_resets_a_password(admin_user):
    target = make_user("forgetful", role=Role.MODERATOR)
    client = client_for(admin_user)
    bad = client.post(
        f"/users/{target.pk}/password/",
        {"new_password1": NEW_PASSWORD, "new_password2": "x"},
    )
    assert bad.status_code == 200 and "didn" in bad.content.decode()
    ok = client.post(
        f"/users/{target.pk}/password/",
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert ok.status_code == 302
    target.refresh_from_db()
    assert target.check_password(NEW_PASSWORD)
