"""The counts behind the overview pages and /metrics, and each person's language.

The pages never count the send log or the decision log: they read the small count
tables, which liveadmin.rollup fills incrementally from the logs (and the webhook's
own per-minute counts).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Span(models.TextChoices):
    MINUTE = "m", "minute"
    HOUR = "h", "hour"
    DAY = "d", "day"
    TOTAL = "t", "since the start"
    # Sliding windows (start is always the epoch), kept for the top lists: counts of
    # the hours of the last 24 hours / 7 days; an hour leaving the window is subtracted.
    LAST_DAY = "D", "last 24 hours"
    LAST_WEEK = "W", "last 7 days"


class Metric(models.TextChoices):
    # Sends that have an answer, by app, user, kind, outcome and error code.
    SEND = "send", "sends"
    # The same sends by outcome only (the auditors' volume chart reads few rows).
    VOLUME = "volume", "sends by outcome"
    # Webhook answers by app and action (copied from webhooks.DecisionCount).
    DECISION = "decision", "webhook decisions"
    # Non-allow decisions by app and sender (key) / matched entry (code).
    SENDER = "sender", "decisions per sender"
    ENTRY = "entry", "decisions per entry"
    # Webhook decision time: code = the bucket's upper bound in ms (0 = above all).
    LATENCY = "latency", "webhook latency"


class Tally(models.Model):
    """How many of ``metric`` fell in the time bucket of ``span`` starting at ``start``.

    One table for every figure: the dimensions a metric does not use stay at their
    defaults, so one unique key covers all of them.
    """

    metric = models.CharField(max_length=16, choices=Metric.choices)
    span = models.CharField(max_length=1, choices=Span.choices)
    start = models.DateTimeField()
    app_id = models.BigIntegerField(default=0)
    user_id = models.BigIntegerField(default=0)
    kind = models.CharField(max_length=16, blank=True, default="")
    outcome = models.CharField(max_length=24, blank=True, default="")
    code = models.BigIntegerField(default=0)
    key = models.CharField(max_length=128, blank=True, default="")
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "metric",
                    "span",
                    "start",
                    "app_id",
                    "user_id",
                    "kind",
                    "outcome",
                    "code",
                    "key",
                ],
                name="unique_tally",
            ),
        ]
        indexes = [
            models.Index(
                fields=["metric", "span", "user_id", "start"], name="tally_user"
            ),
            # Top lists read a window's largest counts first.
            models.Index(fields=["metric", "span", "-count"], name="tally_top"),
        ]

    def __str__(self) -> str:
        return f"{self.metric}/{self.span} {self.start:%Y-%m-%d %H:%M}: {self.count}"


class RollupState(models.Model):
    """Where each rollup stopped: the last log id read, or the last minute summed."""

    name = models.CharField(max_length=32, primary_key=True)
    last_id = models.BigIntegerField(default=0)
    last_minute = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.last_id}"


class PendingSend(models.Model):
    """A send the rollup saw still waiting: counted once it has its answer."""

    record_id = models.BigIntegerField(primary_key=True)

    def __str__(self) -> str:
        return str(self.record_id)


class LastSend(models.Model):
    """Each app's latest answered send per outcome (for the administrators' page)."""

    app_id = models.BigIntegerField()
    outcome = models.CharField(max_length=24)
    record_id = models.BigIntegerField()
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["app_id", "outcome"], name="unique_last_send"
            ),
        ]

    def __str__(self) -> str:
        return f"app {self.app_id} last {self.outcome}: {self.record_id}"


class LanguagePreference(models.Model):
    """The language a person picked in the navigation (liveadmin.language)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    language = models.CharField(max_length=16)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.language}"
