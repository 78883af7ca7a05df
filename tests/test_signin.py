"""Signing in: throttled per account and address (django-axes), and a second factor
(TOTP + recovery codes, django-otp) required for administrators, optional for others."""

from __future__ import annotations

import logging
import re

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from liveadmin.roles import Role
from tests.conftest import client_for
from tests.factories import PASSWORD, make_user, totp_code

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")
VERIFY = reverse("otp-verify")
SETUP = reverse("otp-setup")


def sign_in(client: Client, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post(
        LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip
    )


# --- throttling ------------------------------------------------------------------------


def test_it_locks_an_account_for_an_address_after_five_failures(caplog):
    make_user("victim", role=Role.MANAGER)
    client = Client()
    for _ in range(4):
        response = sign_in(client, "victim", "wrong")
        assert response.status_code == 200
        assert (
            "Please enter a correct username and password" in response.content.decode()
        )
    caplog.set_level(logging.WARNING, logger="liveadmin.signin")
    response = sign_in(client, "victim", "wrong")
    assert response.status_code == 429
    assert "Sign-in locked" in response.content.decode()
    assert "locked for 15 minutes" in response.content.decode()
    assert any(
        "sign-in locked" in r.getMessage()
        and "'victim' from 10.0.0.1" in r.getMessage()
        for r in caplog.records
    )
    # The right password from the same address is refused while locked.
    response = sign_in(client, "victim", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another address may still sign in to the account.
    other = Client()
    response = sign_in(other, "victim", PASSWORD, ip="10.0.0.2")
    assert response.status_code == 302 and "_auth_user_id" in other.session


def test_the_lock_ends_after_fifteen_minutes(settings):
    from datetime import timedelta

    from axes.models import AccessAttempt

    make_user("victim", role=Role.MANAGER)
    client = Client()
    for _ in range(5):
        sign_in(client, "victim", "wrong")
    assert sign_in(client, "victim", PASSWORD).status_code == 429
    # The attempts age past the cool-off (as 15 minutes passing would do).
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= timedelta(minutes=15, seconds=1)
        attempt.save()
    response = sign_in(client, "victim", PASSWORD)
    assert response.status_code == 302 and "_auth_user_id" in client.session


# --- second factor ---------------------------------------------------------------------


def test_an_administrator_needs_the_code_after_the_password(admin_user, settings):
    # django-otp waits 1 s, doubling, after each wrong code: this test retries at once.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    client = Client()
    response = sign_in(client, admin_user.username, PASSWORD)
    assert response.status_code == 302
    response = client.get(reverse("messaging:app-list"))
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)
    response = client.post(VERIFY, {"code": "000000", "next": "/apps/"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "That code is not right" in body and 'value="000000"' in body
    response = client.post(
        VERIFY, {"code": totp_code(), "next": reverse("messaging:app-list")}
    )
    assert response.status_code == 302
    assert client.get(reverse("messaging:app-list")).status_code == 200


def test_an_administrator_without_a_device_must_set_one_up(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    admin = make_user("newadmin", role=Role.ADMIN)
    TOTPDevice.objects.filter(user=admin).delete()
    client = Client()
    sign_in(client, "newadmin", PASSWORD)
    response = client.get(reverse("messaging:app-list"))
    assert response["Location"].startswith(SETUP)
    page = client.get(SETUP).content.decode()
    assert "Administrators must sign in with a second factor" in page
    assert "<svg" in page
    secret = re.search(r'id="otp-secret">([A-Z2-7]+)<', page).group(1)
    device = TOTPDevice.objects.get(user=admin, confirmed=False)
    response = client.post(SETUP, {"code": "123456"})
    assert "That code is not right" in response.content.decode()
    response = client.post(SETUP, {"code": totp_code(device.key)})
    body = response.content.decode()
    codes = re.findall(r"<li><code>([a-z0-9]+)</code></li>", body)
    assert len(codes) == 10
    assert secret  # shown for typing into an app
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("messaging:app-list")).status_code == 200
    # A recovery code works once, in a new sign-in.
    other = Client()
    sign_in(other, "newadmin", PASSWORD)
    assert other.post(VERIFY, {"code": codes[0]}).status_code == 302
    assert other.get(reverse("messaging:app-list")).status_code == 200
    third = Client()
    sign_in(third, "newadmin", PASSWORD)
    assert (
        "That code is not right"
        in third.post(VERIFY, {"code": codes[0]}).content.decode()
    )
    assert StaticToken.objects.filter(device__user=admin).count() == 9


def test_others_may_turn_it_on_and_off(manager):
    client = client_for(manager)
    assert client.get(reverse("messaging:audit")).status_code == 200  # not required
    page = client.get(SETUP).content.decode()
    assert "must sign in" not in page
    device = TOTPDevice.objects.get(user=manager, confirmed=False)
    client.post(SETUP, {"code": totp_code(device.key)})
    # Next sign-in asks for the code.
    fresh = Client()
    sign_in(fresh, manager.username, PASSWORD)
    assert fresh.get(reverse("messaging:audit"))["Location"].startswith(VERIFY)
    response = client.post(reverse("otp-turn-off"))
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=manager).exists()


def test_an_administrator_cannot_turn_it_off(admin_user):
    client = client_for(admin_user)
    assert client.post(reverse("otp-turn-off")).status_code == 403
    assert TOTPDevice.objects.filter(user=admin_user).exists()
    assert "Administrators cannot turn it off" in client.get(SETUP).content.decode()


def test_the_second_factor_pages_need_a_sign_in():
    for url in (VERIFY, SETUP):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    response = Client().post(reverse("otp-recovery-codes"))
    assert response.status_code == 302


def test_new_recovery_codes_replace_the_old_ones(admin_user):
    client = client_for(admin_user)
    first = re.findall(
        r"<li><code>([a-z0-9]+)</code></li>",
        client.post(reverse("otp-recovery-codes")).content.decode(),
    )
    second = re.findall(
        r"<li><code>([a-z0-9]+)</code></li>",
        client.post(reverse("otp-recovery-codes")).content.decode(),
    )
    assert len(first) == len(second) == 10 and not set(first) & set(second)
    assert set(
        StaticToken.objects.filter(device__user=admin_user).values_list(
            "token", flat=True
        )
    ) == set(second)
