"""Second factor: TOTP (an authenticator app) with recovery codes, via django-otp.

Administrators must use it (they hold the providers' secret keys); everyone else
may turn it on. A user with a confirmed device is signed in only once a code was
checked (RequireSecondFactorMiddleware sends them to the code page first).
Recovery codes are django-otp's static device: ten single-use codes.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import django_otp
import segno
from django.db import transaction
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from liveadmin.roles import Role, has_role

logger = logging.getLogger(__name__)

RECOVERY_CODES = 10
TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


def is_required(user: Any) -> bool:
    return has_role(user, Role.ADMIN)


def is_verified(user: Any) -> bool:
    """This session passed the second factor (django_otp's OTPMiddleware sets it)."""
    check = getattr(user, "is_verified", None)
    return bool(check()) if check is not None else False


def has_second_factor(user: Any) -> bool:
    return django_otp.user_has_device(user, confirmed=True)


def pending_totp(user: Any) -> TOTPDevice:
    """The unconfirmed authenticator being set up (a new secret if there is none)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
    return device


def totp_secret(device: TOTPDevice) -> str:
    """The base32 secret people type into an authenticator app."""
    return parse_qs(urlsplit(device.config_url).query)["secret"][0]


def totp_qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URL as an inline SVG QR code (no script, no image request)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=4)


@transaction.atomic
def confirm_totp(
    request: HttpRequest, device: TOTPDevice, code: str
) -> list[str] | None:
    """Confirm the authenticator with a first code; returns new recovery codes.

    None when the code is wrong. On success the session counts as verified.
    """
    if not device.verify_token(code.strip()):
        logger.info("user %s: wrong first code for a new authenticator", device.user_id)
        return None
    TOTPDevice.objects.filter(user=device.user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = new_recovery_codes(device.user)
    django_otp.login(request, device)
    logger.info("user %s turned on two-factor sign-in", device.user_id)
    return codes


def new_recovery_codes(user: Any) -> list[str]:
    """Replace the user's recovery codes with RECOVERY_CODES new ones."""
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def verify_code(request: HttpRequest, code: str) -> bool:
    """Check an authenticator or recovery code; on success the session is verified."""
    user = request.user
    code = code.strip().replace(" ", "")
    for device in django_otp.devices_for_user(user, confirmed=True):
        verified = django_otp.verify_token(user, device.persistent_id, code)
        if verified is not None:
            django_otp.login(request, verified)
            if isinstance(verified, StaticDevice):
                logger.warning("user %s signed in with a recovery code", user.pk)
            return True
    logger.warning("user %s: wrong second-factor code", user.pk)
    return False


def remaining_recovery_codes(user: Any) -> int:
    return StaticToken.objects.filter(device__user=user).count()


@transaction.atomic
def turn_off(user: Any) -> None:
    """Remove every device (not allowed for administrators: the view checks)."""
    for device in django_otp.devices_for_user(user, confirmed=None):
        device.delete()
    logger.info("user %s turned off two-factor sign-in", user.pk)
