from __future__ import annotations

from collections.abc import Collection
from typing import Any, Self

from django.conf import settings
from django.db import IntegrityError, models
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from liveadmin.encryption import EncryptedTextField
from liveadmin.roles import Role, has_role
from messaging import providers, stored_text
from messaging.kinds import KINDS, SHORT_NAMES, SendKind
from messaging.variables import variables_in


class ProviderApp(models.Model):
    """An operator's app at a provider, with the credentials LiveAdmin sends with.

    ``secret_key`` and ``webhook_token`` are encrypted at rest and never rendered.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    # Choices come from the provider registry (callables: a new provider or region
    # needs no migration).
    provider = models.CharField(
        _("provider"), max_length=16, choices=providers.provider_choices
    )
    app_id = models.PositiveBigIntegerField(_("SDKAppID / AppId"))
    region = models.CharField(
        _("region"), max_length=32, choices=providers.region_choices
    )
    identifier = models.CharField(
        _("admin identifier"),
        max_length=32,
        help_text=_(
            "Tencent: the app admin account the REST API is called as. ZEGO: default sender user ID."
        ),
    )
    secret_key = EncryptedTextField(
        _("secret key"), help_text=_("Tencent secret key or ZEGO ServerSecret.")
    )
    webhook_token = EncryptedTextField(_("webhook token"), blank=True, default="")
    base_url = models.URLField(
        _("base URL override"),
        blank=True,
        default="",
        help_text=_(
            "For private deployments and the sandbox; empty means the region's API domain."
        ),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    webhook_fail_closed = models.BooleanField(
        _("webhook fail closed"),
        default=False,
        help_text=_(
            "If the webhook fails internally, forbid the message instead of letting it through."
        ),
    )
    rate_limit = models.PositiveIntegerField(
        _("rate limit"),
        null=True,
        blank=True,
        help_text=_(
            "Sends per second for this app, below the provider's documented limit. Empty: the documented limit."
        ),
    )
    broadcast_requires_approval = models.BooleanField(
        _("broadcast requires approval"), default=False
    )
    at_least_once = models.BooleanField(
        _("at-least-once delivery"),
        default=False,
        help_text=_(
            "Text and custom messages whose delivery is unknown (a timeout, a lost "
            "connection, a worker that died) are sent again: a room may get a duplicate "
            "instead of a gap. Off: such rooms are marked unknown and offered for a re-send."
        ),
    )
    test_environment = models.BooleanField(
        _("ZEGO test environment"),
        default=False,
        help_text=_(
            "ZEGO only: the project's test environment (sent as IsTest=true; 10 requests/s "
            "instead of 100)."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("provider app")
        verbose_name_plural = _("provider apps")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "app_id"], name="unique_provider_app_id"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def api_base_url(self) -> str:
        """Where requests go: the override, or https:// + the region's domain."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"https://{providers.api_domain(self.provider, self.region)}"

    @property
    def region_label(self) -> str:
        return str(providers.regions(self.provider)[self.region][0])

    @property
    def has_webhook_token(self) -> bool:
        return bool(self.webhook_token)


class Outcome(models.TextChoices):
    """A send's outcome. Every one but ``waiting`` is final: the row never changes
    again (DESIGN.md "Delivery semantics"); sending again makes a new row."""

    WAITING = "waiting", _("Waiting")
    OK = "ok", _("OK")
    DROPPED = "dropped", _("Dropped")
    FAILED = "failed", _("Failed")
    # The request may have reached the provider but no answer was recorded (read
    # timeout, connection lost, a worker that died holding the row): not sent again
    # by itself, offered for an explicit re-send.
    UNKNOWN = "unknown", _("Unknown")
    # A batch was cancelled before this room was sent.
    CANCELLED = "cancelled", _("Cancelled")


# What identifies a send: set when the row is written, never changed.
IDENTITY_FIELDS = frozenset(
    {
        "id",
        "pk",
        "created_at",
        "user",
        "user_id",
        "app",
        "app_id",
        "batch",
        "batch_id",
        "kind",
        "room_id",
        "sender",
        "random",
        "request_body",
    }
)


class SendRecordQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> SendRecordQuerySet:
        """Auditors see every send; community managers see the sends they made."""
        if has_role(user, Role.AUDITOR):
            return self
        if has_role(user, Role.MANAGER):
            return self.filter(user=user)
        return self.none()

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("the send log is append-only")

    def update(self, **kwargs: Any) -> int:
        """Answer once: an update only reaches rows still waiting, so a final row
        never changes through the ORM, and what identifies a send never changes
        (the database triggers refuse the same in SQL)."""
        if identity := sorted(IDENTITY_FIELDS.intersection(kwargs)):
            raise IntegrityError(
                f"messaging_sendrecord is append-only: {', '.join(identity)} cannot change"
            )
        waiting = self.filter(outcome=Outcome.WAITING)
        return super(SendRecordQuerySet, waiting).update(**kwargs)


class SendRecord(models.Model):
    """One send to a provider: written before the request goes out, then updated
    once with the provider's answer. The log is append-only: rows are never
    deleted, and only the send path updates the outcome fields.
    """

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # No single-column FK indexes: the (user|app, created_at, id) indexes below
    # lead with these columns and serve the same lookups.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="sends",
        db_index=False,
    )
    app = models.ForeignKey(
        ProviderApp, on_delete=models.PROTECT, related_name="sends", db_index=False
    )
    kind = models.CharField(_("kind"), max_length=16, choices=SendKind.choices)
    room_id = models.CharField(_("room ID"), max_length=128, blank=True, default="")
    sender = models.CharField(_("sender"), max_length=64, blank=True, default="")
    # The de-duplication Random of the message, kept across retries.
    random = models.PositiveBigIntegerField()
    outcome = models.CharField(
        _("outcome"), max_length=16, choices=Outcome.choices, default=Outcome.WAITING
    )
    action_status = models.CharField(max_length=16, blank=True, default="")
    error_code = models.BigIntegerField(null=True, blank=True)
    error_info = models.TextField(blank=True, default="")
    request_id = models.CharField(max_length=128, blank=True, default="")
    msg_seq = models.BigIntegerField(null=True, blank=True)
    msg_time = models.BigIntegerField(null=True, blank=True)
    drop_reason = models.CharField(max_length=64, blank=True, default="")
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    retryable = models.BooleanField(default=False)
    # What was sent (no usersig, key or signature is ever stored) and what came back.
    request_body = models.JSONField(default=dict)
    response_body = models.JSONField(null=True, blank=True)
    # Bulk sends: the batch this row belongs to, when a worker took the row
    # (cleared on an answer; a stale claim means the worker died mid-send), and
    # the earliest time a retryable answer may be tried again.
    batch = models.ForeignKey(
        "Batch",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="records",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)

    objects = SendRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("send record")
        verbose_name_plural = _("send records")
        ordering = ["-created_at", "-id"]
        # The log is read newest first in keyset pages on (created_at, id), so each
        # filter of the audit page has an index ending in (created_at, id): the
        # database walks it backwards from the cursor and stops after one page,
        # however many rows match. RequestId and MsgSeq select a handful of rows
        # and need no order in the index.
        indexes = [
            models.Index(fields=["created_at", "id"], name="send_created_id"),
            models.Index(fields=["app", "created_at", "id"], name="send_app_created"),
            models.Index(fields=["user", "created_at", "id"], name="send_user_created"),
            models.Index(
                fields=["outcome", "created_at", "id"], name="send_outcome_created"
            ),
            models.Index(
                fields=["room_id", "created_at", "id"], name="send_room_created"
            ),
            models.Index(
                fields=["sender", "created_at", "id"], name="send_sender_created"
            ),
            models.Index(fields=["kind", "created_at", "id"], name="send_kind_created"),
            # Most sends succeed without a code: index only the rows that have one.
            models.Index(
                fields=["error_code", "created_at", "id"],
                name="send_error_created",
                condition=models.Q(error_code__isnull=False),
            ),
            models.Index(fields=["request_id"], name="send_request_id"),
            models.Index(
                fields=["msg_seq"],
                name="send_msg_seq",
                condition=models.Q(msg_seq__isnull=False),
            ),
            # Batch progress (counts by outcome) and the workers' next-row lookups.
            models.Index(fields=["batch", "outcome", "id"], name="send_batch_outcome"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.room_id or 'all rooms'} ({self.outcome})"

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("the send log is append-only")

    @property
    def kind_short_name(self) -> str:
        """The kind in one word, in the reader's language (the log's Kind column)."""
        return str(SHORT_NAMES.get(self.kind, self.kind))

    @property
    def error_info_text(self) -> str:
        """ErrorInfo for a page: LiveAdmin's own stored sentences in the reader's
        language, the provider's words as stored."""
        return stored_text.display(self.error_info)

    @classmethod
    def from_db(
        cls,
        db: str | None,
        field_names: Collection[str],
        values: Collection[Any],
        **kwargs: Any,
    ) -> Self:
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._remember_final()
        return instance

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        super().refresh_from_db(*args, **kwargs)
        self._remember_final()

    def _remember_final(self) -> None:
        # Only the fields that were loaded (a deferred field would query again).
        loaded = self.__dict__
        final = loaded.get("outcome", Outcome.WAITING) != Outcome.WAITING
        self._final_values = self._answer_values() if final else None

    def _answer_values(self) -> dict[str, Any]:
        loaded = self.__dict__
        return {
            f.attname: loaded[f.attname]
            for f in self._meta.concrete_fields
            if f.attname in loaded and f.attname != "updated_at"
        }

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A row loaded as final saves only unchanged (the trigger guards SQL)."""
        final = getattr(self, "_final_values", None)
        if final is not None and any(
            self.__dict__.get(name) != value for name, value in final.items()
        ):
            raise PermissionError(
                f"send {self.pk} is final ({self.outcome}): it never changes"
            )
        super().save(*args, **kwargs)


class AuditPending(models.Model):
    """A send that became final and waits to be linked into the hash chain.

    The database writes these rows (a trigger on messaging_sendrecord, see
    migration 0009), in the order rows become final; ``link_final_sends``
    consumes them. A work queue, not part of the log.
    """

    record = models.OneToOneField(
        SendRecord, on_delete=models.PROTECT, related_name="+"
    )


class AuditLink(models.Model):
    """One link of the hash chain over final sends (messaging.services.audit_chain).

    ``digest`` = SHA-256(previous link's digest, 32 bytes || canonical form of the
    send). Links are only ever inserted.
    """

    seq = models.BigIntegerField(primary_key=True)
    record = models.OneToOneField(
        SendRecord, on_delete=models.PROTECT, related_name="link"
    )
    digest = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} send {self.record_id} {self.digest[:12]}"


class AuditVerification(models.Model):
    """The result of one walk of the chain (``auditlog verify`` or the periodic task)."""

    checked_at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    verified_to = models.BigIntegerField(default=0)
    head = models.CharField(max_length=64, blank=True, default="")
    rows = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0)
    problem = models.TextField(blank=True, default="")
    problem_record_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-checked_at", "-id"]

    @property
    def problem_text(self) -> str:
        """The stored (English) problem in the reader's language."""
        return stored_text.display(self.problem)

    def __str__(self) -> str:
        return f"{'ok' if self.ok else 'BROKEN'} to #{self.verified_to} at {self.checked_at}"


# The message fields a template stores for each kind (room IDs and recipients are
# chosen at send time, not saved in a template).
TEMPLATE_FIELDS: dict[str, list[str]] = {
    kind: spec.template_fields for kind, spec in KINDS.items()
}


class MessageTemplateQuerySet(models.QuerySet):
    def usable_for(self, app: ProviderApp, kind: str) -> MessageTemplateQuerySet:
        """Templates of ``kind`` saved for ``app`` or for all apps."""
        return self.filter(models.Q(app=app) | models.Q(app__isnull=True), kind=kind)

    def search(self, query: str) -> MessageTemplateQuerySet:
        """Match the name, the app name or any saved field text (case-insensitive)."""
        query = query.strip()
        if not query:
            return self
        return self.annotate(fields_text=Cast("fields", models.TextField())).filter(
            models.Q(name__icontains=query)
            | models.Q(app__name__icontains=query)
            | models.Q(fields_text__icontains=query)
        )


class MessageTemplate(models.Model):
    """A reusable message for one kind, for one app or all apps of its provider.

    ``fields`` maps the kind's field names (TEMPLATE_FIELDS) to text that may hold
    named variables like ``{host_name}`` (see messaging.variables).
    """

    name = models.CharField(max_length=100, unique=True)
    app = models.ForeignKey(
        ProviderApp,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="templates",
        help_text=_("Empty: usable with every app that has this kind."),
    )
    kind = models.CharField(max_length=16, choices=SendKind.choices)
    fields = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MessageTemplateQuerySet.as_manager()

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["name"]
        indexes = [models.Index(fields=["kind", "app"], name="template_kind_app")]

    def __str__(self) -> str:
        return self.name

    @property
    def variables(self) -> list[str]:
        return variables_in(self.field_values())

    def field_values(self) -> list[str]:
        """The saved texts of this kind's fields, in form order."""
        return [str(self.fields.get(name, "")) for name in TEMPLATE_FIELDS[self.kind]]

    @property
    def summary(self) -> str:
        """The non-empty saved texts, for the list page."""
        return " · ".join(v for v in self.field_values() if v)


class BatchStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval")
    SCHEDULED = "scheduled", _("Scheduled")
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    CANCELLED = "cancelled", _("Cancelled")
    DONE = "done", _("Done")


def default_pause_after_failures() -> int:
    return settings.BATCH_PAUSE_AFTER_FAILURES


class BatchQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> BatchQuerySet:
        """The send log's rule: administrators see every batch; a community manager
        sees the batches they made, plus every broadcast awaiting approval (another
        manager approves it)."""
        if has_role(user, Role.ADMIN):
            return self
        if has_role(user, Role.MANAGER):
            return self.filter(
                models.Q(created_by=user)
                | models.Q(status=BatchStatus.AWAITING_APPROVAL)
            )
        return self.none()

    def awaiting_approval_by(self, user: Any) -> BatchQuerySet:
        """Broadcasts another manager made that ``user`` may approve."""
        if not has_role(user, Role.MANAGER):
            return self.none()
        return self.filter(status=BatchStatus.AWAITING_APPROVAL).exclude(
            created_by=user
        )


class Batch(models.Model):
    """One message sent to many rooms (or one scheduled / approved send).

    The rooms are the batch's SendRecords, created up front in ``waiting``;
    progress is their count by outcome.
    """

    app = models.ForeignKey(
        ProviderApp, on_delete=models.PROTECT, related_name="batches"
    )
    kind = models.CharField(max_length=16, choices=SendKind.choices)
    # The message fields without room_id (see messaging.services.sending).
    fields = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="batches"
    )
    status = models.CharField(
        max_length=24, choices=BatchStatus.choices, default=BatchStatus.RUNNING
    )
    scheduled_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="approved_batches",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cancelled_batches",
    )
    resend_of = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="resends",
    )
    room_count = models.PositiveIntegerField(default=0)
    pause_after_failures = models.PositiveIntegerField(
        default=default_pause_after_failures,
        help_text=_("Pause after this many provider failures in a row."),
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Start of the current run of transient failures (network, 5xx, provider busy);
    # the batch pauses once it lasts longer than BATCH_OUTAGE_PAUSE_SECONDS.
    failing_since = models.DateTimeField(null=True, blank=True)
    failing_reason = models.TextField(blank=True, default="")
    pause_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = BatchQuerySet.as_manager()

    class Meta:
        verbose_name = _("batch")
        verbose_name_plural = _("batches")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["status", "scheduled_at"], name="batch_status_scheduled"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"Batch {self.pk}: {self.get_kind_display()} to {self.room_count} room(s)"
        )

    @property
    def pause_reason_text(self) -> str:
        """The stored (English) pause reason in the reader's language."""
        return stored_text.display(self.pause_reason)

    @property
    def failing_reason_text(self) -> str:
        return stored_text.display_reason(self.failing_reason)

    @property
    def is_finished(self) -> bool:
        return self.status in (BatchStatus.DONE, BatchStatus.CANCELLED)

    def progress(self) -> dict[str, int]:
        """Rows by outcome, plus total, done and percent (one grouped COUNT on the
        (batch, outcome) index)."""
        counts = dict.fromkeys(Outcome.values, 0)
        rows = (
            SendRecord.objects.filter(batch=self)
            .order_by()
            .values_list("outcome")
            .annotate(n=models.Count("id"))
        )
        for outcome, n in rows:
            counts[outcome] = n
        total = sum(counts.values())
        answered = total - counts[Outcome.WAITING]
        counts["total"] = total
        counts["answered"] = answered
        counts["percent"] = round(100 * answered / total) if total else 100
        return counts


def awaiting_approval_count(user: Any) -> int:
    """Broadcasts waiting for ``user``'s approval: the count in the navigation."""
    return Batch.objects.awaiting_approval_by(user).count()
