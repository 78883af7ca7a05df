"""Check an app's credentials with one harmless call, recorded in the send log."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from messaging import ratelimit
from messaging.models import ProviderApp, SendKind, SendRecord
from messaging.providers import explain, provider
from messaging.providers import send as provider_send
from messaging.services.sending import build_request, credentials_for

logger = logging.getLogger(__name__)

ACCEPTED, REFUSED, INCONCLUSIVE = "accepted", "refused", "inconclusive"

HINTS = {
    ACCEPTED: _(
        "The provider accepted the signature: the SDKAppID / AppId, secret and "
        "admin identifier work. (The check sends to a room that cannot exist.)"
    ),
    REFUSED: _(
        "The provider refused the signature or the app. Check the SDKAppID / AppId, "
        "the secret key, the admin identifier and the region."
    ),
    INCONCLUSIVE: _(
        "The answer does not say whether the credentials work (the provider "
        "could not be reached, or answered something else). Try again later."
    ),
}


@dataclass(frozen=True)
class CheckResult:
    verdict: str
    error_code: int | None
    error_info: str
    explanation: str
    record: SendRecord

    @property
    def ok(self) -> bool:
        return self.verdict == ACCEPTED

    @property
    def hint(self) -> str:
        return str(HINTS[self.verdict])


def check_credentials(app: ProviderApp, *, actor: Any) -> CheckResult:
    """Send one message to a room ID that cannot exist and read the answer.

    The send log keeps it like any send (written before, answered after) with the
    kind ``check``; its outcome is ``ok`` when the credentials were accepted. A
    disabled app can be checked too (before it is switched on).
    """
    module = provider(app.provider)
    room_id = f"liveadmin-check-{secrets.token_hex(8)}"
    fields = module.check_fields(room_id, app.identifier)
    enabled, app.enabled = app.enabled, True  # build_request refuses disabled apps
    try:
        body = build_request(app, module.CHECK_KIND, fields)
    finally:
        app.enabled = enabled
    record = SendRecord.objects.create(
        user=actor,
        app=app,
        kind=SendKind.CHECK,
        room_id=room_id,
        sender=app.identifier,
        random=secrets.randbelow(2**32),
        request_body=body,
    )
    ratelimit.acquire(app, module.CHECK_KIND)
    result = provider_send(credentials_for(app), module.CHECK_KIND, body)
    code = result.error_code
    if result.ok or code in module.CHECK_ACCEPTED:
        verdict = ACCEPTED
    elif code in module.CHECK_REFUSED:
        verdict = REFUSED
    else:
        verdict = INCONCLUSIVE
    SendRecord.objects.filter(pk=record.pk, outcome="waiting").update(
        outcome="ok" if verdict == ACCEPTED else "failed",
        action_status=result.action_status,
        error_code=code,
        error_info=result.error_info,
        request_id=result.request_id,
        http_status=result.http_status,
        latency_ms=result.latency_ms,
        attempts=1,
        response_body=result.response_body,
    )
    record.refresh_from_db()
    logger.info(
        "credential check app=%s verdict=%s code=%s record=%s",
        app.pk,
        verdict,
        code,
        record.pk,
    )
    explanation = (explain(app.provider, code) if code else "") or result.explanation
    return CheckResult(verdict, code, result.error_info, explanation, record)
