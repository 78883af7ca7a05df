"""Message kinds: one spec per kind, the one home of their fields, limits and rates.

The send form, the template form, ``sendmsg``'s options, the templates' saved fields
and the rate limiter are all built from ``KINDS``; the provider modules check the same
limits when they build a request. The facts (limits, rates) are in docs/providers.md,
with the provider page each comes from.

Adding a kind: a ``SendKind`` member, a ``KindSpec`` here, and the provider module's
request builder for it (``BUILDERS``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_stubs_ext import StrOrPromise


class SendKind(models.TextChoices):
    TEXT = "text", _("Room text message")
    CUSTOM = "custom", _("Room custom message")
    BROADCAST = "broadcast", _("Broadcast to all live rooms")
    COMMAND = "command", _("Custom command (ZEGO)")
    # Not a message a person sends: "Check credentials" (messaging/services/
    # credentials.py) logs its one call under this kind. It has no KindSpec.
    CHECK = "check", _("Credential check")


# The one-word names the send log's Kind column shows (English: the stored value).
SHORT_NAMES: dict[str, StrOrPromise] = {
    SendKind.TEXT: pgettext_lazy("send kind, one word", "text"),
    SendKind.CUSTOM: pgettext_lazy("send kind, one word", "custom"),
    SendKind.BROADCAST: pgettext_lazy("send kind, one word", "broadcast"),
    SendKind.COMMAND: pgettext_lazy("send kind, one word", "command"),
    SendKind.CHECK: pgettext_lazy("send kind, one word", "check"),
}


# Limits (docs/providers.md, "Limits"). Tencent: one message is at most 12 KB, counted
# over the whole message (every content field together); a broadcast's MsgBody is at
# most 12,000 bytes. ZEGO: MessageContent at most 1024 bytes, at most 10 recipients.
TENCENT_MESSAGE_BYTES = 12 * 1024
TENCENT_BROADCAST_BODY_BYTES = 12_000
# A broadcast's de-duplication Random (and every record's) is a 32-bit unsigned integer.
MAX_RANDOM = 4_294_967_295
ZEGO_CONTENT_BYTES = 1024
ZEGO_MAX_RECIPIENTS = 10
# ZEGO's test environment (IsTest=true) allows 10 requests/s where production allows
# 100 (docs/providers.md, "ZEGO test environment").
ZEGO_TEST_ENV_RATE = 10.0


@dataclass(frozen=True)
class FieldSpec:
    """One field of a kind: the key ``build_request`` takes, and how to ask for it."""

    name: str
    label: StrOrPromise
    help: StrOrPromise
    # "line" (one line), "text" (a text area), "account" (a user ID), "users" (a
    # list of user IDs: one per line or comma-separated)
    type: str = "text"
    max_bytes: int | None = None  # UTF-8 bytes; the page counts them as you type
    max_length: int | None = None  # characters, for one-line fields
    required: bool = False
    required_message: StrOrPromise = ""
    json: bool = False  # must be a JSON string
    rows: int = 3
    template: bool = True  # a template saves this field
    option: str = ""  # sendmsg's --option; default: the name with dashes
    cli_required: bool | None = None  # sendmsg; None: same as ``required``
    one_of: str = ""  # fields sharing this name: give exactly one (sendmsg)

    @property
    def cli_option(self) -> str:
        return "--" + (self.option or self.name.replace("_", "-"))


@dataclass(frozen=True)
class KindSpec:
    kind: SendKind
    provider: str
    api: str  # the provider API it calls
    intro: StrOrPromise  # one sentence for the send page
    # "rooms": one or many room IDs (a batch past one); "room": exactly one room;
    # "app": every room of the app (no room ID).
    target: str
    fields: tuple[FieldSpec, ...]
    # Requests per second per app, as documented, and the bucket the limiter
    # counts them in (kinds sharing a bucket share the budget).
    documented_rate: float
    rate_bucket: str
    # The rate in the provider's test environment, where it has one (ZEGO's IsTest).
    test_environment_rate: float | None = None
    # The whole message's byte limit, counted over ``counted_fields`` together.
    message_bytes: int | None = None
    counted_fields: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return str(self.kind.label)

    @property
    def template_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.template]

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)


KINDS: dict[str, KindSpec] = {
    SendKind.TEXT: KindSpec(
        kind=SendKind.TEXT,
        provider="tencent",
        api="send_text_msg",
        intro=_(
            "A text message in one or many live rooms (send_text_msg, at most 200 requests/s)."
        ),
        target="rooms",
        documented_rate=200.0,
        rate_bucket="live_engine",
        message_bytes=TENCENT_MESSAGE_BYTES,
        counted_fields=("text", "extension_info"),
        fields=(
            FieldSpec(
                "sender",
                _("Sender account"),
                _(
                    "Sender_Account: the user the message comes from. Required; the account must exist in the app."
                ),
                type="account",
                required=True,
                required_message=_("Enter the sender's user ID."),
            ),
            FieldSpec(
                "text",
                _("Text"),
                _(
                    "TextContent: what the room sees. At most 12 KB (UTF-8 bytes) per message, "
                    "extension info included."
                ),
                max_bytes=TENCENT_MESSAGE_BYTES,
                required=True,
                required_message=_("Enter the message text."),
                rows=4,
            ),
            FieldSpec(
                "extension_info",
                _("Extension info"),
                _(
                    "ExtensionInfo (optional): custom data saved in the cloud and delivered with the message "
                    '(CloudCustomData). Must be JSON, e.g. {"data": 1, "value": 2}. Counts toward the 12 KB.'
                ),
                max_bytes=TENCENT_MESSAGE_BYTES,
                json=True,
                rows=2,
            ),
        ),
    ),
    SendKind.CUSTOM: KindSpec(
        kind=SendKind.CUSTOM,
        provider="tencent",
        api="send_custom_msg",
        intro=_(
            "A custom message your app interprets, in one or many live rooms (send_custom_msg, at most 200/s)."
        ),
        target="rooms",
        documented_rate=200.0,
        rate_bucket="live_engine",
        message_bytes=TENCENT_MESSAGE_BYTES,
        counted_fields=("business_id", "data"),
        fields=(
            FieldSpec(
                "sender",
                _("Sender account"),
                _("Sender_Account (optional): the user the message comes from."),
                type="account",
                required_message=_("Enter the sender's user ID."),
            ),
            FieldSpec(
                "business_id",
                _("Business ID"),
                _(
                    "BusinessId: the mark your app uses to tell custom messages apart, e.g. gift or like."
                ),
                type="line",
                max_length=128,
                required=True,
                required_message=_("Enter the business ID (the message's mark)."),
            ),
            FieldSpec(
                "data",
                _("Data"),
                _(
                    "Data: the message content your app reads, delivered as {BusinessId, Data}. "
                    "At most 12 KB, business ID included."
                ),
                max_bytes=TENCENT_MESSAGE_BYTES,
                required=True,
                required_message=_("Enter the data."),
                rows=4,
            ),
        ),
    ),
    SendKind.BROADCAST: KindSpec(
        kind=SendKind.BROADCAST,
        provider="tencent",
        api="send_broadcast_msg",
        intro=_(
            "One message to every live (AVChatRoom) group of the app (send_broadcast_msg, at most 1/s). "
            "The app needs broadcast messaging enabled in the Chat console."
        ),
        target="app",
        documented_rate=1.0,
        rate_bucket="broadcast",
        fields=(
            FieldSpec(
                "from_account",
                _("From account"),
                _(
                    "From_Account (optional): the sender. Empty: the app admin account. If set, the account must exist."
                ),
                type="account",
                required_message=_("Enter the sender's user ID."),
                option="from",
            ),
            FieldSpec(
                "text",
                _("Text"),
                _(
                    "A text message (TIMTextElem). Fill in the text or the custom data, not both."
                ),
                max_bytes=TENCENT_BROADCAST_BODY_BYTES,
                rows=4,
                one_of="body",
            ),
            FieldSpec(
                "custom_data",
                _("Custom data"),
                _(
                    "A custom message (TIMCustomElem Data) your app reads, e.g. JSON. Instead of the text."
                ),
                max_bytes=TENCENT_BROADCAST_BODY_BYTES,
                one_of="body",
            ),
            FieldSpec(
                "cloud_custom_data",
                _("Cloud custom data"),
                _(
                    "CloudCustomData (optional): extra data saved with the message. "
                    "The whole broadcast is at most 12,000 bytes."
                ),
                max_bytes=TENCENT_BROADCAST_BODY_BYTES,
                rows=2,
            ),
        ),
    ),
    SendKind.COMMAND: KindSpec(
        kind=SendKind.COMMAND,
        provider="zego",
        api="SendCustomCommand",
        intro=_(
            "A custom signalling message to users in one ZEGO room (SendCustomCommand, at most 100/s; "
            "10/s for a project in ZEGO's test environment)."
        ),
        target="room",
        documented_rate=100.0,
        rate_bucket="command",
        test_environment_rate=ZEGO_TEST_ENV_RATE,
        fields=(
            FieldSpec(
                "to_users",
                _("To user IDs"),
                format_lazy(
                    _(
                        "ToUserId[] (optional): at most {max} user IDs, one per line or "
                        "comma-separated. Empty: everyone in the room."
                    ),
                    max=ZEGO_MAX_RECIPIENTS,
                ),
                type="users",
                template=False,
                option="to",
            ),
            FieldSpec(
                "from_user",
                _("From user ID"),
                _(
                    "FromUserId: the sender. Its own clients do not receive the command, so use an ID that is not "
                    "in the room to reach everyone. Empty: the app's admin identifier."
                ),
                type="account",
                required_message=_("Enter the sender's user ID."),
                option="from",
                cli_required=True,
            ),
            FieldSpec(
                "content",
                _("Message content"),
                _(
                    "MessageContent: what the clients receive in onIMRecvCustomCommand. At most 1024 bytes."
                ),
                max_bytes=ZEGO_CONTENT_BYTES,
                required=True,
                required_message=_("Enter the message content."),
                rows=4,
            ),
        ),
    ),
}


def kinds_of(provider: str) -> list[SendKind]:
    """The kinds a provider sends, in declaration order."""
    return [spec.kind for spec in KINDS.values() if spec.provider == provider]


def documented_rate(kind: str, *, test_environment: bool = False) -> float:
    """Requests per second per app that the provider documents for ``kind``."""
    spec = KINDS[kind]
    if test_environment and spec.test_environment_rate is not None:
        return spec.test_environment_rate
    return spec.documented_rate
