"""Blocklists that moderators manage, their change history, and webhook decisions."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from messaging.models import ProviderApp

# Kinds, actions and the own-code range have one home: webhooks/vocabulary.py
# (webhooks.labels translates its labels).
from webhooks.labels import ACTION_CHOICES, DECISION_CHOICES, KIND_CHOICES
from webhooks.vocabulary import FORBID_CODE_MAX, FORBID_CODE_MIN


class Blocklist(models.Model):
    """A named list of entries, for one app or (app empty) for every app."""

    name = models.CharField(max_length=100)
    app = models.ForeignKey(
        ProviderApp,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="blocklists",
        help_text=_("Empty: the list applies to every app."),
    )
    enabled = models.BooleanField(default=True)
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["name"], name="unique_blocklist_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def scope(self) -> str:
        return self.app.name if self.app is not None else "all apps"

    def snapshot(self) -> dict[str, Any]:
        """What the change history keeps of this list."""
        return {
            "name": self.name,
            "app": self.app.name if self.app is not None else None,
            "enabled": self.enabled,
            "note": self.note,
        }


class BlocklistEntryQuerySet(models.QuerySet):
    def active(self, now: Any = None) -> BlocklistEntryQuerySet:
        now = now or timezone.now()
        return self.filter(enabled=True, blocklist__enabled=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )

    def for_app(self, app: ProviderApp | None) -> BlocklistEntryQuerySet:
        if app is None:
            return self.filter(blocklist__app__isnull=True)
        return self.filter(Q(blocklist__app__isnull=True) | Q(blocklist__app=app))


class BlocklistEntry(models.Model):
    blocklist = models.ForeignKey(
        Blocklist, on_delete=models.CASCADE, related_name="entries"
    )
    kind = models.CharField(max_length=16, choices=KIND_CHOICES, default="word")
    term = models.CharField(max_length=500)
    # What duplicates are judged on: words and wildcards differing only in case or
    # width (NFKC) match the same messages, so they are the same entry.
    term_key = models.CharField(max_length=500, editable=False, default="")
    action = models.CharField(max_length=16, choices=ACTION_CHOICES, default="forbid")
    code = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[
            MinValueValidator(FORBID_CODE_MIN),
            MaxValueValidator(FORBID_CODE_MAX),
        ],
        help_text=_("For “forbid with my code”: 10100-10200, shown to the sender."),
    )
    info = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text=_("For “forbid with my code”: the ErrorInfo text the sender sees."),
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True, default="")
    enabled = models.BooleanField(default=True)
    exact = models.BooleanField(
        default=False,
        help_text=_("Match only this spelling: no accent or look-alike folding."),
    )
    leet = models.BooleanField(
        default=False,
        help_text=_(
            "Also read digits and symbols as letters (0 o, 1 i l, 3 e, 4 a, 5 s, 7 t, @ a, $ s)."
        ),
    )
    # A forbid (or discard, mask) entry can also put what it caught in the review queue.
    review = models.BooleanField(
        default=False,
        help_text=_("Also queue the messages it catches for review."),
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    hit_count = models.PositiveBigIntegerField(default=0)
    last_hit_at = models.DateTimeField(null=True, blank=True)

    objects = BlocklistEntryQuerySet.as_manager()

    class Meta:
        ordering = ["blocklist", "kind", "term"]
        verbose_name_plural = _("blocklist entries")
        constraints = [
            models.UniqueConstraint(
                fields=["blocklist", "kind", "term_key"], name="unique_entry_per_list"
            ),
        ]
        indexes = [models.Index(fields=["-hit_count"], name="entry_hits")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.term}"

    @staticmethod
    def make_key(kind: str, term: str) -> str:
        if kind in ("word", "wildcard", "allow"):
            return unicodedata.normalize("NFKC", term).casefold()
        return term

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.term_key = self.make_key(self.kind, self.term)
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "term_key"}
        super().save(*args, **kwargs)

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def snapshot(self) -> dict[str, Any]:
        return {
            "blocklist": self.blocklist.name,
            "kind": self.kind,
            "term": self.term,
            "action": self.action,
            "code": self.code,
            "info": self.info,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "note": self.note,
            "enabled": self.enabled,
            "exact": self.exact,
            "leet": self.leet,
            "review": self.review,
        }


class ChangeQuerySet(models.QuerySet):
    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("the blocklist change history is append-only")

    def update(self, **kwargs: Any) -> int:
        raise PermissionError("the blocklist change history is append-only")


class BlocklistChange(models.Model):
    """One change to a list or an entry: who, when, before and after. Append-only."""

    class Action(models.TextChoices):
        CREATE = "create", _("created")
        UPDATE = "update", _("updated")
        DISABLE = "disable", _("disabled")
        ENABLE = "enable", _("enabled")
        DELETE = "delete", _("deleted")

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Kept as text too: the user may be deleted later, and commands may act without one.
    actor_name = models.CharField(max_length=150, blank=True, default="")
    # "blocklist", "entry", "sanction" or "escalation"
    object_type = models.CharField(max_length=16)
    object_id = models.BigIntegerField()
    action = models.CharField(max_length=16, choices=Action.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    objects = ChangeQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="change_object"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.object_type} {self.object_id}"

    @property
    def diff(self) -> list[tuple[str, str, str]]:
        """(field, before, after) for each field that changed, values as JSON text
        ("" where there is no before or after: a creation or a deletion). Sorted by
        name: PostgreSQL's jsonb does not keep the keys' order."""
        before, after = self.before or {}, self.after or {}
        names = sorted({*before, *after})

        def show(snapshot: dict | None, name: str) -> str:
            if snapshot is None:
                return ""
            return json.dumps(snapshot.get(name), ensure_ascii=False)

        return [
            (name, show(self.before, name), show(self.after, name))
            for name in names
            if before.get(name) != after.get(name)
        ]

    @property
    def before_json(self) -> str:
        return json.dumps(self.before, ensure_ascii=False, indent=1)

    @property
    def after_json(self) -> str:
        return json.dumps(self.after, ensure_ascii=False, indent=1)

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("the blocklist change history is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("the blocklist change history is append-only")


class ReviewState(models.TextChoices):
    OPEN = "open", _("Waiting for review")
    DISMISSED = "dismissed", _("Dismissed")
    MUTED = "muted", _("Sender muted")
    ADDED = "added", _("Term added to a list")


APPEND_ONLY_DECISIONS = (
    "the decision log is append-only: rows leave only through the retention purge "
    "(manage.py purgedecisions)"
)
# What a moderator's work adds to a decision later (review state, the sanction it
# led to, the send it belongs to). Everything else is the record of the decision
# and never changes (also in the database: webhooks migration 0004).
DECISION_WORKFLOW_FIELDS = frozenset(
    {
        "review",
        "reviewed_at",
        "reviewed_by",
        "sanction",
        "sanction_id",
        "send_record",
        "send_record_id",
    }
)


class DecisionQuerySet(models.QuerySet):
    def review_queue(self) -> DecisionQuerySet:
        return self.filter(review=ReviewState.OPEN)

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError(APPEND_ONLY_DECISIONS)

    def update(self, **kwargs: Any) -> int:
        if fixed := sorted(set(kwargs) - DECISION_WORKFLOW_FIELDS):
            raise PermissionError(f"{APPEND_ONLY_DECISIONS}: {', '.join(fixed)}")
        return super().update(**kwargs)


class Decision(models.Model):
    """A message the webhook forbade, discarded or masked (allowed ones are counted).

    Append-only (queryset, model and, on PostgreSQL, a trigger); the retention
    purge (webhooks.retention) is the only way out, and it records what it removed.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    app = models.ForeignKey(
        ProviderApp, on_delete=models.CASCADE, related_name="decisions"
    )
    room_id = models.CharField(max_length=128, blank=True, default="")
    sender = models.CharField(max_length=128, blank=True, default="")
    action = models.CharField(max_length=16, choices=DECISION_CHOICES)
    error_code = models.IntegerField(default=0)
    entry_ids = models.JSONField(default=list)
    # The flattened text that was checked, for reading and searching.
    text = models.TextField(blank=True, default="")
    # The original MsgBody / CloudCustomData, and the answer we gave.
    original = models.JSONField(default=dict)
    response = models.JSONField(default=dict)
    # How long the webhook took to decide (microseconds; empty for older rows).
    latency_us = models.PositiveIntegerField(null=True, blank=True)
    # The mute that answered (the message matched no entry of its own).
    sanction = models.ForeignKey(
        "Sanction",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="decisions",
    )
    # Operator_Account was the app's admin account: LiveAdmin itself sent it, and
    # send_record is the audit row it belongs to (linked when first looked at).
    own_send = models.BooleanField(default=False)
    send_record = models.ForeignKey(
        "messaging.SendRecord",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhook_decisions",
    )
    review = models.CharField(
        max_length=16, choices=ReviewState.choices, blank=True, default=""
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.CharField(max_length=150, blank=True, default="")

    objects = DecisionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["review", "-created_at"], name="decision_review"),
            models.Index(fields=["sender", "-created_at"], name="decision_sender"),
            models.Index(fields=["app", "-created_at"], name="decision_app_created"),
            models.Index(
                fields=["action", "-created_at"], name="decision_action_created"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.sender} in {self.room_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """New rows, or ``update_fields`` among the workflow fields only."""
        if self.pk is not None and not self._state.adding:
            fields = set(kwargs.get("update_fields") or ["*"])
            if not fields <= DECISION_WORKFLOW_FIELDS:
                raise PermissionError(APPEND_ONLY_DECISIONS)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError(APPEND_ONLY_DECISIONS)


class RetentionPurge(models.Model):
    """What one retention purge removed from the decision log. Append-only."""

    purged_at = models.DateTimeField(default=timezone.now)
    table = models.CharField(max_length=64)
    cutoff = models.DateTimeField(help_text=_("Rows created before this were removed."))
    rows = models.PositiveBigIntegerField()
    first_id = models.BigIntegerField(null=True, blank=True)
    last_id = models.BigIntegerField(null=True, blank=True)
    oldest = models.DateTimeField(null=True, blank=True)
    newest = models.DateTimeField(null=True, blank=True)
    retention_days = models.PositiveIntegerField()

    class Meta:
        ordering = ["-purged_at", "-id"]

    def __str__(self) -> str:
        return f"{self.rows} row(s) of {self.table} before {self.cutoff}"


class DecisionCount(models.Model):
    """Messages answered per app, minute and action (allowed ones are only counted)."""

    app = models.ForeignKey(ProviderApp, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    action = models.CharField(max_length=16)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-minute"]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "minute", "action"], name="unique_decision_count"
            ),
        ]


class RulesVersion(models.Model):
    """A single row whose number goes up with every change the webhook must see."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.PositiveBigIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"rules v{self.version}"


class RejectionCount(models.Model):
    """Webhook calls refused as bad input, per minute and reason (e.g. bad_json, bad_sign)."""

    minute = models.DateTimeField()
    reason = models.CharField(max_length=32)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-minute"]
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "reason"], name="unique_rejection_count"
            ),
        ]


class SanctionKind(models.TextChoices):
    MUTE = "mute", _("Muted")
    FLAG = "flag", _("Everything flagged for review")


class SanctionQuerySet(models.QuerySet):
    def active(self, now: Any = None) -> SanctionQuerySet:
        now = now or timezone.now()
        return self.filter(lifted_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class Sanction(models.Model):
    """A sender muted (or flagged) in one room or the whole app, until expires_at."""

    app = models.ForeignKey(
        ProviderApp, on_delete=models.CASCADE, related_name="sanctions"
    )
    sender = models.CharField(max_length=128)
    room_id = models.CharField(
        max_length=128, blank=True, default="", help_text=_("Empty: every room.")
    )
    kind = models.CharField(
        max_length=8, choices=SanctionKind.choices, default=SanctionKind.MUTE
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)  # empty: permanent
    reason = models.CharField(max_length=500, blank=True, default="")
    created_by = models.CharField(max_length=150, blank=True, default="")
    # "manual", or "escalation" when a rule imposed it.
    source = models.CharField(max_length=16, default="manual")
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.CharField(max_length=150, blank=True, default="")

    objects = SanctionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["app", "sender"], name="sanction_app_sender"),
            models.Index(fields=["lifted_at", "expires_at"], name="sanction_active"),
        ]

    def __str__(self) -> str:
        where = f"room {self.room_id}" if self.room_id else "every room"
        return f"{self.kind} {self.sender} in {where}"

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None and (
            self.expires_at is None or self.expires_at > timezone.now()
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "app": self.app.name,
            "sender": self.sender,
            "room": self.room_id or None,
            "kind": self.kind,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "reason": self.reason,
            "source": self.source,
            "lifted": self.lifted_at.isoformat() if self.lifted_at else None,
        }


class EscalationRule(models.Model):
    """N hits within M seconds: mute (or flag everything from) the sender for X minutes."""

    app = models.ForeignKey(
        ProviderApp, on_delete=models.CASCADE, related_name="escalation_rules"
    )
    hits = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    within_seconds = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 3600)]
    )
    sanction = models.CharField(
        max_length=8, choices=SanctionKind.choices, default=SanctionKind.MUTE
    )
    minutes = models.PositiveIntegerField(default=10, help_text=_("0: permanently."))
    room_only = models.BooleanField(
        default=False, help_text=_("Only in the room of the hits, not the whole app.")
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["app", "hits"]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "sanction"], name="unique_escalation_per_app"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.hits} hits in {self.within_seconds}s: {self.sanction} "
            f"{self.minutes or 'permanent'} min"
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "app": self.app.name,
            "hits": self.hits,
            "within_seconds": self.within_seconds,
            "sanction": self.sanction,
            "minutes": self.minutes,
            "room_only": self.room_only,
            "enabled": self.enabled,
        }


class LatencyCount(models.Model):
    """Decisions per app, minute and latency bucket (upper bound in microseconds)."""

    app = models.ForeignKey(ProviderApp, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    bucket_us = models.PositiveIntegerField()
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-minute"]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "minute", "bucket_us"], name="unique_latency_count"
            ),
        ]
