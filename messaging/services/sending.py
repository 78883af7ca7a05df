"""Sending one message: validate and build the request, record it, deliver it.

The audit row is written before the request goes out and updated once with the
answer, so a crash leaves a visible ``waiting`` row, never a lost
send. Views, tasks and the ``sendmsg`` command call these functions.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.db.models import F
from django.utils.translation import gettext as _

from messaging import providers, ratelimit
from messaging.kinds import MAX_RANDOM
from messaging.models import Outcome as RecordOutcome
from messaging.models import ProviderApp, SendKind, SendRecord
from messaging.providers.base import Credentials, Outcome, SendResult

logger = logging.getLogger(__name__)


class SendValidationError(Exception):
    """The request would surely be rejected; nothing was sent.

    ``errors`` maps field names (room_id, sender, text, ...; ``__all__`` for the
    request as a whole) to messages shown next to the fields.
    """

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(
            "; ".join(
                f"{field}: {' '.join(messages)}"
                if field != "__all__"
                else " ".join(messages)
                for field, messages in errors.items()
            )
        )


def credentials_for(app: ProviderApp) -> Credentials:
    return Credentials(
        provider=app.provider,
        app_id=app.app_id,
        identifier=app.identifier,
        secret=app.secret_key,
        base_url=app.api_base_url,
        test_environment=app.test_environment,
    )


def build_request(app: ProviderApp, kind: str, fields: dict[str, Any]) -> dict:
    """Validate ``fields`` against the documented limits and return the exact body
    that will be sent (Tencent: the JSON body; ZEGO: the business parameters).

    The result holds no secret (usersig and signatures live in the query string and
    are added at send time). Raises SendValidationError.
    """
    if not app.enabled:
        raise SendValidationError(
            {
                "__all__": [
                    _("The app %(name)s is disabled; it cannot send.")
                    % {"name": app.name}
                ]
            }
        )
    if kind not in providers.kinds(app.provider):
        allowed = ", ".join(providers.kinds(app.provider)) or _("nothing")
        raise SendValidationError(
            {
                "__all__": [
                    _(
                        "A %(provider)s app cannot send %(kind)s (it sends: %(allowed)s)."
                    )
                    % {"provider": app.provider, "kind": repr(kind), "allowed": allowed}
                ]
            }
        )
    body, errors = providers.build_body(
        app.provider, kind, fields, default_sender=app.identifier
    )
    if errors:
        raise SendValidationError(errors)
    return body


def _sender(body: dict) -> str:
    for name in ("Sender_Account", "From_Account", "FromUserId"):
        if body.get(name):
            return str(body[name])
    return ""


def record_send(
    app: ProviderApp, kind: str, body: dict, *, actor: Any, batch: Any = None
) -> SendRecord:
    """Write the audit row (outcome ``waiting``) before anything goes out (see new_record)."""
    record = new_record(app, kind, body, actor=actor, batch=batch)
    record.save(force_insert=True)
    return record


def new_record(
    app: ProviderApp, kind: str, body: dict, *, actor: Any, batch: Any = None
) -> SendRecord:
    """The unsaved audit row of a send (batches bulk-create one per room).

    ``random`` is the message's de-duplication Random: the broadcast body's own
    (kept across retries so the provider can drop a repeat within 5 minutes); the
    live_engine APIs and ZEGO take none, so for them it is a fresh number that
    identifies the send.
    """
    random_value = body.get("Random") if kind == SendKind.BROADCAST else None
    if not isinstance(random_value, int) or not 0 <= random_value <= MAX_RANDOM:
        random_value = secrets.randbelow(MAX_RANDOM + 1)
        if kind == SendKind.BROADCAST:
            body = {**body, "Random": random_value}
    return SendRecord(
        user=actor,
        app=app,
        kind=kind,
        room_id=str(body.get("RoomId") or ""),
        sender=_sender(body),
        random=random_value,
        request_body=body,
        batch=batch,
    )


def result_from_record(record: SendRecord) -> SendResult:
    """The stored answer of a row, as a SendResult (for rows not sent again)."""
    if record.outcome == RecordOutcome.WAITING:
        # Another caller claimed this attempt and has not written its answer yet.
        return SendResult(
            outcome=Outcome.FAILED,
            error_code=record.error_code,
            error_info=record.error_info,
            explanation=_("This message is being sent by another worker right now."),
            retryable=True,
            retry_after=1.0,
        )
    outcome = Outcome(record.outcome)
    if outcome == Outcome.DROPPED:
        explanation = providers.explain_drop(record.app.provider, record.drop_reason)
    else:
        explanation = providers.explain(record.app.provider, record.error_code)
    return SendResult(
        outcome=outcome,
        action_status=record.action_status,
        error_code=record.error_code,
        error_info=record.error_info,
        explanation=explanation or record.error_info,
        request_id=record.request_id,
        msg_seq=record.msg_seq,
        msg_time=record.msg_time,
        drop_reason=record.drop_reason,
        http_status=record.http_status,
        latency_ms=record.latency_ms or 0,
        retryable=record.retryable,
        response_body=record.response_body,
    )


def deliver(record: SendRecord, *, final_attempt: bool = True) -> SendResult:
    """Send a recorded request if its row is still ``waiting``, and write the answer.

    The attempt is claimed by bumping ``attempts`` with a conditional update, so two
    workers handed the same row never both send it; a row already answered is never
    sent again. A retryable failure with ``final_attempt`` False keeps the row
    ``waiting`` (with the latest error) for the caller to retry; otherwise the
    outcome is written.
    """
    claimed = SendRecord.objects.filter(
        pk=record.pk, outcome=RecordOutcome.WAITING, attempts=record.attempts
    ).update(attempts=F("attempts") + 1)
    if not claimed:
        record.refresh_from_db()
        logger.info(
            "send record=%s not sent again (outcome=%s attempts=%s)",
            record.pk,
            record.outcome,
            record.attempts,
        )
        return result_from_record(record)
    record.attempts += 1
    app = record.app
    if not app.enabled:
        result = SendResult(
            outcome=Outcome.FAILED,
            error_info="app disabled",
            explanation=_("The app %(name)s is disabled; the message was not sent.")
            % {"name": app.name},
        )
    else:
        # Shared per-app budget (Redis across workers): blocks until a token.
        ratelimit.acquire(app, record.kind)
        result = providers.send(credentials_for(app), record.kind, record.request_body)

    keep_waiting = result.retryable and not final_attempt and not result.ok
    outcome = RecordOutcome.WAITING if keep_waiting else str(result.outcome)
    answer = {
        "outcome": outcome,
        "action_status": result.action_status,
        "error_code": result.error_code,
        "error_info": result.error_info,
        "request_id": result.request_id,
        "msg_seq": result.msg_seq,
        "msg_time": result.msg_time,
        "drop_reason": result.drop_reason,
        "http_status": result.http_status,
        "latency_ms": result.latency_ms,
        "retryable": result.retryable,
        "response_body": result.response_body,
    }
    updated = SendRecord.objects.filter(
        pk=record.pk, outcome=RecordOutcome.WAITING
    ).update(**answer)
    if updated:
        for name, value in answer.items():
            setattr(record, name, value)
    logger.info(
        "send record=%s kind=%s app=%s outcome=%s code=%s attempts=%s",
        record.pk,
        record.kind,
        app.pk,
        outcome,
        result.error_code,
        record.attempts,
    )
    return result


def send_message(
    app: ProviderApp, kind: str, fields: dict[str, Any], *, actor: Any
) -> tuple[SendRecord, SendResult]:
    """Validate, record and deliver one message. Raises SendValidationError (nothing
    recorded or sent) when the request would surely be rejected."""
    body = build_request(app, kind, fields)
    record = record_send(app, kind, body, actor=actor)
    return record, deliver(record)
