"""Sign-in throttling with django-axes: the lock page and the lock's log line.

After SIGNIN_FAILURE_LIMIT failures within SIGNIN_LOCK_MINUTES, the account is
locked for that address (AXES_LOCKOUT_PARAMETERS) for SIGNIN_LOCK_MINUTES.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

logger = logging.getLogger(__name__)


def locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: a plain page saying so, with 429."""
    response = TemplateResponse(
        request,
        "registration/locked.html",
        {"lock_minutes": settings.SIGNIN_LOCK_MINUTES},
        status=429,
    )
    return response.render()


def log_lock(
    sender: Any, request: HttpRequest, username: str, ip_address: str, **kwargs: Any
) -> None:
    """axes' user_locked_out signal: one warning line per lock."""
    logger.warning(
        "sign-in locked for %s minutes: account %r from %s after %s failures",
        settings.SIGNIN_LOCK_MINUTES,
        username,
        ip_address,
        settings.SIGNIN_FAILURE_LIMIT,
    )
