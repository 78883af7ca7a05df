"""Moderation beyond blocklists: the review queue, sanctions on senders, escalation
rules. Views, commands and the webhook's background writer call these; every change
is recorded in the change history (who and why) and bumps the rules version, so each
web process sees a new mute at its next version check."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from messaging.models import ProviderApp
from webhooks import services, version
from webhooks.models import (
    Blocklist,
    BlocklistChange,
    Decision,
    EscalationRule,
    ReviewState,
    Sanction,
    SanctionKind,
)

logger = logging.getLogger(__name__)

# The durations a moderator picks from (minutes; 0 = permanently).
MUTE_CHOICES: list[tuple[int, Any]] = [
    (10, gettext_lazy("10 minutes")),
    (60, gettext_lazy("1 hour")),
    (24 * 60, gettext_lazy("24 hours")),
    (0, gettext_lazy("Permanently")),
]
MAX_MINUTES = 365 * 24 * 60


def _actor_name(actor: Any) -> str:
    return actor.get_username() if getattr(actor, "pk", None) else "manage.py"


def _record(
    actor: Any,
    obj: Sanction | EscalationRule,
    action: str,
    before: dict | None,
    after: dict | None,
) -> None:
    BlocklistChange.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=_actor_name(actor),
        object_type="sanction" if isinstance(obj, Sanction) else "escalation",
        object_id=obj.pk,
        action=action,
        before=before,
        after=after,
    )


# --- sanctions ----------------------------------------------------------------------


def _clean_sanction(sender: str, room_id: str, minutes: int, reason: str) -> None:
    errors: dict[str, list[str]] = {}
    if not sender.strip() or any(c.isspace() for c in sender.strip()):
        errors["sender"] = [gettext("Enter the sender's user ID (no spaces).")]
    elif len(sender) > 128:
        errors["sender"] = [gettext("A user ID has at most 128 characters.")]
    if len(room_id) > 128 or any(c.isspace() for c in room_id.strip()):
        errors["room_id"] = [
            gettext("A room ID has at most 128 characters and no spaces.")
        ]
    if not 0 <= minutes <= MAX_MINUTES:
        errors["minutes"] = [
            gettext("Minutes go from 0 (permanent) to %(max)s.") % {"max": MAX_MINUTES}
        ]
    if len(reason) > 500:
        errors["reason"] = [gettext("At most 500 characters.")]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def mute_sender(
    app: ProviderApp,
    sender: str,
    *,
    minutes: int,
    room_id: str = "",
    reason: str = "",
    actor: Any = None,
    kind: str = SanctionKind.MUTE,
    source: str = "manual",
    now: datetime | None = None,
) -> Sanction:
    """Mute (or flag everything from) ``sender`` in one room or, with no room, the
    whole app, for ``minutes`` (0 = permanently). An active sanction of the same kind
    and scope is replaced, so the newest duration holds. Raises ValidationError."""
    sender, room_id, reason = sender.strip(), room_id.strip(), reason.strip()
    _clean_sanction(sender, room_id, minutes, reason)
    now = now or timezone.now()
    for old in Sanction.objects.active(now).filter(
        app=app, sender=sender, room_id=room_id, kind=kind
    ):
        _lift(old, actor=actor, now=now)
    sanction = Sanction.objects.create(
        app=app,
        sender=sender,
        room_id=room_id,
        kind=kind,
        created_at=now,
        expires_at=now + timedelta(minutes=minutes) if minutes else None,
        reason=reason,
        created_by=_actor_name(actor) if source == "manual" else source,
        source=source,
    )
    _record(actor, sanction, "create", None, sanction.snapshot())
    version.bump()
    logger.info("sanction %s: %s %s in app %s", sanction.pk, kind, sender, app.name)
    return sanction


def _lift(sanction: Sanction, *, actor: Any, now: datetime) -> None:
    before = sanction.snapshot()
    sanction.lifted_at = now
    sanction.lifted_by = _actor_name(actor)
    sanction.save(update_fields=["lifted_at", "lifted_by"])
    _record(actor, sanction, "disable", before, sanction.snapshot())


@transaction.atomic
def unmute_sender(
    app: ProviderApp,
    sender: str,
    *,
    room_id: str | None = None,
    actor: Any = None,
) -> list[Sanction]:
    """Lift the sender's active sanctions in ``room_id`` (None: every scope)."""
    now = timezone.now()
    active = Sanction.objects.active(now).filter(app=app, sender=sender.strip())
    if room_id is not None:
        active = active.filter(room_id=room_id.strip())
    lifted = list(active.select_related("app"))
    for sanction in lifted:
        _lift(sanction, actor=actor, now=now)
    if lifted:
        version.bump()
    return lifted


@transaction.atomic
def lift_sanction(sanction: Sanction, *, actor: Any = None) -> Sanction:
    if sanction.is_active:
        _lift(sanction, actor=actor, now=timezone.now())
        version.bump()
    return sanction


def active_sanctions(app: ProviderApp | None = None) -> QuerySet[Sanction]:
    qs = Sanction.objects.active().select_related("app")
    return qs.filter(app=app) if app is not None else qs


def sanction_row(sanction: Sanction) -> dict[str, Any]:
    return {"id": sanction.pk, **sanction.snapshot()}


# --- the review queue ---------------------------------------------------------------


def review_queue(app: ProviderApp | None = None) -> QuerySet[Decision]:
    """Messages waiting for a person, newest first."""
    qs = Decision.objects.review_queue().select_related("app")
    return qs.filter(app=app) if app is not None else qs


def queue_count(user: Any = None) -> int:
    """Open review items (every moderator works the same queue)."""
    return Decision.objects.review_queue().count()


def _resolve(decision: Decision, state: str, actor: Any) -> int:
    """Close an open item once (a second moderator's click changes nothing)."""
    return Decision.objects.filter(pk=decision.pk, review=ReviewState.OPEN).update(
        review=state, reviewed_at=timezone.now(), reviewed_by=_actor_name(actor)
    )


def dismiss(decision: Decision, *, actor: Any = None) -> bool:
    return bool(_resolve(decision, ReviewState.DISMISSED, actor))


@transaction.atomic
def mute_from_decision(
    decision: Decision,
    *,
    minutes: int,
    whole_app: bool = True,
    reason: str = "",
    actor: Any = None,
) -> Sanction:
    """Mute the sender of a decision (from the log or the queue); closes its review."""
    sanction = mute_sender(
        decision.app,
        decision.sender,
        minutes=minutes,
        room_id="" if whole_app else decision.room_id,
        reason=reason or f"decision #{decision.pk}: {decision.text[:200]}",
        actor=actor,
    )
    _resolve(decision, ReviewState.MUTED, actor)
    return sanction


@transaction.atomic
def add_term_from_decision(
    decision: Decision,
    blocklist: Blocklist,
    *,
    term: str,
    kind: str = "word",
    action: str = "forbid",
    actor: Any = None,
) -> Any:
    """Add a term seen in a queued message to a list; closes its review."""
    entry = services.add_entry(
        blocklist,
        term=term,
        kind=kind,
        action=action,
        note=f"from review of decision #{decision.pk}",
        actor=actor,
    )
    _resolve(decision, ReviewState.ADDED, actor)
    return entry


def queue_row(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.pk,
        "at": decision.created_at.isoformat(),
        "app": decision.app.name,
        "room": decision.room_id,
        "sender": decision.sender,
        "action": decision.action,
        "entry_ids": decision.entry_ids,
        "text": decision.text,
    }


# --- escalation rules ------------------------------------------------------------------


@transaction.atomic
def set_escalation(
    app: ProviderApp,
    *,
    hits: int,
    within_seconds: int,
    minutes: int,
    sanction: str = SanctionKind.MUTE,
    room_only: bool = False,
    enabled: bool = True,
    actor: Any = None,
) -> EscalationRule:
    """Create or replace the app's rule for this sanction kind. Raises ValidationError."""
    errors: dict[str, list[str]] = {}
    if not 1 <= hits <= 10_000:
        errors["hits"] = [gettext("Hits go from 1 to 10,000.")]
    if not 1 <= within_seconds <= 7 * 24 * 3600:
        errors["within_seconds"] = [gettext("Seconds go from 1 to 604,800 (a week).")]
    if not 0 <= minutes <= MAX_MINUTES:
        errors["minutes"] = [
            gettext("Minutes go from 0 (permanent) to %(max)s.") % {"max": MAX_MINUTES}
        ]
    if sanction not in SanctionKind.values:
        errors["sanction"] = [
            gettext("Use one of %(values)s.")
            % {"values": ", ".join(SanctionKind.values)}
        ]
    if errors:
        raise ValidationError(errors)
    rule = EscalationRule.objects.filter(app=app, sanction=sanction).first()
    before = rule.snapshot() if rule else None
    if rule is None:
        rule = EscalationRule(app=app, sanction=sanction)
    rule.hits, rule.within_seconds, rule.minutes = hits, within_seconds, minutes
    rule.room_only, rule.enabled = room_only, enabled
    rule.save()
    after = rule.snapshot()
    if after != before:
        _record(actor, rule, "create" if before is None else "update", before, after)
        version.bump()
    return rule


@transaction.atomic
def delete_escalation(rule: EscalationRule, *, actor: Any = None) -> None:
    before = rule.snapshot()
    pk = rule.pk
    rule.delete()
    rule.pk = pk
    _record(actor, rule, "delete", before, None)
    version.bump()


def escalation_row(rule: EscalationRule) -> dict[str, Any]:
    return {"id": rule.pk, **rule.snapshot()}


# --- the decision log ---------------------------------------------------------------------


def filter_decisions(
    qs: QuerySet[Decision], filters: dict[str, Any]
) -> QuerySet[Decision]:
    """The decision log narrowed by app, action, room, sender, entry, time range and
    text (the cleaned data of the decision filter form; empty values are ignored)."""
    from django.db.models import TextField
    from django.db.models.functions import Cast

    if filters.get("app"):
        qs = qs.filter(app=filters["app"])
    if filters.get("action"):
        qs = qs.filter(action=filters["action"])
    if filters.get("room"):
        qs = qs.filter(room_id=filters["room"])
    if filters.get("sender"):
        qs = qs.filter(sender=filters["sender"])
    if filters.get("since"):
        qs = qs.filter(created_at__gte=filters["since"])
    if filters.get("until"):
        qs = qs.filter(created_at__lte=filters["until"])
    if filters.get("entry"):
        # JSON "contains" is PostgreSQL-only; the list's text form works on both.
        qs = qs.annotate(_ids=Cast("entry_ids", TextField())).filter(
            _ids__regex=rf"(^|[^0-9]){int(filters['entry'])}([^0-9]|$)"
        )
    if filters.get("q"):
        qs = qs.filter(text__icontains=filters["q"])
    return qs


DECISION_COLUMNS = [
    "id",
    "created_at",
    "app",
    "room",
    "sender",
    "action",
    "error_code",
    "entry_ids",
    "text",
    "latency_us",
    "send_record",
    "review",
]


def decision_row(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.pk,
        "created_at": decision.created_at.isoformat(),
        "app": decision.app.name,
        "room": decision.room_id,
        "sender": decision.sender,
        "action": decision.action,
        "error_code": decision.error_code,
        "entry_ids": decision.entry_ids,
        "text": decision.text,
        "latency_us": decision.latency_us,
        "send_record": decision.send_record_id,
        "review": decision.review,
    }


# --- LiveAdmin's own sends ------------------------------------------------------------------

# How far apart a send's audit row and its webhook decision may be.
OWN_SEND_SLACK = timedelta(seconds=10)


def _send_content(record: Any) -> str:
    """The text a send put into the message (text: TextContent; custom: Data)."""
    import json

    body = record.request_body or {}
    for key in ("TextContent", "Text"):
        if isinstance(body.get(key), str):
            return body[key]
    data = body.get("Data")
    if isinstance(data, str):
        # Inside the wrapper's JSON string: escaped the way json.dumps escapes it.
        return json.dumps(data, ensure_ascii=False)[1:-1]
    return "" if data is None else str(data)


def _matches(decision: Decision, record: Any) -> bool:
    content = _send_content(record)
    return bool(content) and content in decision.text


def decision_for_send(record: Any) -> Decision | None:
    """The webhook decision about a message LiveAdmin sent (room, sender, content
    and time match, and Operator_Account was the app's admin account), linking the
    two the first time they are found. None: the webhook let it through as sent (or
    its decision is not written yet)."""
    linked = Decision.objects.filter(send_record=record).first()
    if linked is not None or not record.room_id:
        return linked
    sender = record.sender or record.app.identifier
    end = (record.updated_at or timezone.now()) + OWN_SEND_SLACK
    candidates = Decision.objects.filter(
        app_id=record.app_id,
        own_send=True,
        send_record__isnull=True,
        room_id=record.room_id,
        sender=sender,
        created_at__gte=record.created_at - OWN_SEND_SLACK,
        created_at__lte=end,
    ).order_by("created_at")
    for decision in candidates:
        if _matches(decision, record) and Decision.objects.filter(
            pk=decision.pk, send_record__isnull=True
        ).update(send_record=record):
            decision.send_record = record
            return decision
    return None


def send_for_decision(decision: Decision) -> Any:
    """The audit row of a message LiveAdmin sent, from its decision (links them)."""
    from messaging.models import SendRecord

    if decision.send_record_id or not decision.own_send:
        return decision.send_record
    candidates = SendRecord.objects.filter(
        app_id=decision.app_id,
        room_id=decision.room_id,
        created_at__gte=decision.created_at - OWN_SEND_SLACK,
        created_at__lte=decision.created_at + OWN_SEND_SLACK,
    ).select_related("app")
    for record in candidates:
        if (record.sender or record.app.identifier) == decision.sender and _matches(
            decision, record
        ):
            if Decision.objects.filter(pk=decision.pk, send_record__isnull=True).update(
                send_record=record
            ):
                decision.send_record = record
            return decision.send_record
    return None


WEBHOOK_VERB: dict[str, Any] = {
    "mask": gettext_lazy("masked by the webhook"),
    "discard": gettext_lazy("discarded by the webhook"),
    "forbid": gettext_lazy("forbidden by the webhook"),
    "forbid_code": gettext_lazy("forbidden by the webhook"),
    "flag": gettext_lazy("flagged for review by the webhook"),
}
