"""The settings the webhook's hot path reads on every call, read once.

Django's settings object answers each attribute through a Python-level
``__getattribute__`` (about half a microsecond); the hot path asks for these several
times a call. They are read on first use and again after a test changes a setting.
"""

from __future__ import annotations

from typing import NamedTuple

from django.conf import settings
from django.core.signals import setting_changed


class HotSettings(NamedTuple):
    max_body: int  # WEBHOOK_MAX_BODY
    rebuild_in_background: bool  # WEBHOOK_REBUILD_IN_BACKGROUND
    record_in_background: bool  # WEBHOOK_RECORD_IN_BACKGROUND
    record_batch: int  # WEBHOOK_RECORD_BATCH


_current: HotSettings | None = None


def hot() -> HotSettings:
    global _current
    if _current is None:
        _current = HotSettings(
            max_body=settings.WEBHOOK_MAX_BODY,
            rebuild_in_background=bool(settings.WEBHOOK_REBUILD_IN_BACKGROUND),
            record_in_background=bool(settings.WEBHOOK_RECORD_IN_BACKGROUND),
            record_batch=settings.WEBHOOK_RECORD_BATCH,
        )
    return _current


def _forget(**kwargs: object) -> None:
    global _current
    _current = None


setting_changed.connect(_forget)
