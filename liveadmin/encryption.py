"""Encryption at rest for provider secrets (secret keys, webhook tokens).

Values are Fernet tokens made with the first key of LIVEADMIN_ENCRYPTION_KEY; every
key listed there can decrypt, so keys can be rotated by prepending a new one.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models


@cache
def _fernet() -> MultiFernet:
    keys = [
        k.strip() for k in settings.LIVEADMIN_ENCRYPTION_KEY.split(",") if k.strip()
    ]
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "LIVEADMIN_ENCRYPTION_KEY must be one or more comma-separated Fernet keys "
            "(generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from exc


def _reset(*, setting: str, **kwargs) -> None:
    if setting == "LIVEADMIN_ENCRYPTION_KEY":
        _fernet.cache_clear()


setting_changed.connect(_reset)


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        # Never include the token or any part of it in the message.
        raise ImproperlyConfigured(
            "a stored secret cannot be decrypted with LIVEADMIN_ENCRYPTION_KEY"
        ) from None


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; Python code sees the plaintext."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
