"""The sandbox provider's own state: apps, rooms, muted members, delivered messages.

These rows stand for what the provider keeps on its side (the console's app
settings, the live rooms, the messages the audience received). They are not the
dashboard's ProviderApp/SendRecord: a sandbox app can be registered without a
dashboard app, and a dashboard app may point at a real provider.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from liveadmin.encryption import EncryptedTextField
from messaging.sandbox import registry


class FailurePolicy(models.TextChoices):
    # Tencent console setting "handling policy for before-event callback failure".
    DELIVER = "deliver", _("Deliver the message (provider default)")
    REJECT = "reject", _("Do not deliver (sender gets 80003)")


def _state_key() -> str:
    return uuid.uuid4().hex


class SandboxApp(models.Model):
    # Choices come from the sandbox registry (a callable: a new provider needs no
    # migration).
    provider = models.CharField(max_length=16, choices=registry.provider_choices)
    app_id = models.PositiveBigIntegerField("SDKAppID / AppId")
    secret = EncryptedTextField(help_text=_("Tencent secret key or ZEGO ServerSecret."))
    # Tencent: the app admin accounts allowed to call the REST API.
    admins = models.JSONField(default=list, blank=True)
    # Empty: this site's own /webhooks/tencent, built from the incoming request.
    callback_url = models.CharField(max_length=500, blank=True, default="")
    callback_token = EncryptedTextField(blank=True, default="")
    failure_policy = models.CharField(
        max_length=16, choices=FailurePolicy.choices, default=FailurePolicy.DELIVER
    )
    # The console switch "broadcast messaging of audio-video group" (10007 when off).
    broadcast_enabled = models.BooleanField(default=True)
    broadcast_seq = models.PositiveBigIntegerField(default=0)
    # Prefix of this app's rate-limit and de-duplication keys in the cache, so that
    # an app re-created with the same id (tests, a reset database) starts clean.
    state_key = models.CharField(max_length=32, default=_state_key, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "app_id"]
        verbose_name = _("sandbox app")
        verbose_name_plural = _("sandbox apps")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "app_id"], name="unique_sandbox_app"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.app_id}"

    def is_admin(self, identifier: str) -> bool:
        return identifier in (self.admins or [])


class SandboxRoom(models.Model):
    app = models.ForeignKey(SandboxApp, on_delete=models.CASCADE, related_name="rooms")
    room_id = models.CharField(max_length=128)
    # TUILiveKit answers 100006 for a room that is not a live room.
    live = models.BooleanField(default=True)
    last_msg_seq = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room_id"]
        verbose_name = _("sandbox room")
        verbose_name_plural = _("sandbox rooms")
        constraints = [
            models.UniqueConstraint(
                fields=["app", "room_id"], name="unique_sandbox_room"
            ),
        ]

    def __str__(self) -> str:
        return self.room_id


class MutedMemberQuerySet(models.QuerySet):
    def active(self, now=None) -> MutedMemberQuerySet:
        return self.filter(until__gt=now or timezone.now())


class MutedMember(models.Model):
    room = models.ForeignKey(
        SandboxRoom, on_delete=models.CASCADE, related_name="muted"
    )
    account = models.CharField(max_length=64)
    until = models.DateTimeField()

    objects = MutedMemberQuerySet.as_manager()

    class Meta:
        ordering = ["account"]
        verbose_name = _("muted member")
        verbose_name_plural = _("muted members")
        constraints = [
            models.UniqueConstraint(
                fields=["room", "account"], name="unique_sandbox_muted_member"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.account} muted in {self.room} until {self.until:%Y-%m-%d %H:%M:%S}"
        )


class MessageKind(models.TextChoices):
    TEXT = "text", pgettext_lazy("message kind", "Text")
    CUSTOM = "custom", pgettext_lazy("message kind", "Custom")
    BROADCAST = "broadcast", pgettext_lazy("message kind", "Broadcast")
    COMMAND = "command", _("Custom command (ZEGO)")


class SandboxMessage(models.Model):
    """A message the room's audience received (after the before-send webhook)."""

    room = models.ForeignKey(
        SandboxRoom, on_delete=models.CASCADE, related_name="messages"
    )
    msg_seq = models.PositiveBigIntegerField()
    msg_time = models.PositiveBigIntegerField()
    sender = models.CharField(max_length=64, blank=True, default="")
    kind = models.CharField(max_length=16, choices=MessageKind.choices)
    msg_body = models.JSONField(default=list)
    cloud_custom_data = models.TextField(blank=True, default="")
    random = models.PositiveBigIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, default="")
    # True when the before-send webhook replaced MsgBody or CloudCustomData.
    modified = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-msg_seq"]
        verbose_name = _("sandbox message")
        verbose_name_plural = _("sandbox messages")
        constraints = [
            models.UniqueConstraint(
                fields=["room", "msg_seq"], name="unique_sandbox_message_seq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.msg_seq} in {self.room}"

    @property
    def texts(self) -> list[str]:
        """Readable lines of the body, for the rooms page."""
        lines = []
        for elem in self.msg_body if isinstance(self.msg_body, list) else []:
            content = elem.get("MsgContent", {}) if isinstance(elem, dict) else {}
            kind = elem.get("MsgType", "") if isinstance(elem, dict) else ""
            if kind == "TIMTextElem":
                lines.append(str(content.get("Text", "")))
            elif kind == "TIMCustomElem":
                lines.append(f"[custom] {content.get('Data', '')}")
            elif kind == "ZegoCustomCommand":
                lines.append(f"[command] {content.get('MessageContent', '')}")
            else:
                lines.append(f"[{kind}]")
        return lines
