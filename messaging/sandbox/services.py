"""Sandbox actions: register apps, keep rooms and muted members, deliver messages.

Called by the sandbox views (the provider endpoints and the rooms page), the
`sandbox` command, `seed_demo` and the tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from messaging.models import ProviderApp
from messaging.rooms import MAX_ROOM_ID_BYTES
from messaging.sandbox import registry
from messaging.sandbox.models import (
    MessageKind,
    MutedMember,
    SandboxApp,
    SandboxMessage,
    SandboxRoom,
)

logger = logging.getLogger(__name__)

# Tencent: custom group IDs are at most 48 bytes of printable ASCII (docs/providers.md, "Limits");
# ZEGO room IDs are at most 128 bytes. One rule for both keeps the page simple: the
# tighter one, from messaging/rooms.py (the one home of room-ID limits).
ROOM_ID_MAX_BYTES = MAX_ROOM_ID_BYTES["tencent"]
ACCOUNT_MAX_BYTES = 32
# forbid_send_msg's MuteTime: 4294967295 seconds means "muted for ever".
MUTE_FOREVER = 4294967295


def validate_room_id(room_id: str) -> str:
    room_id = room_id.strip()
    if not room_id:
        raise ValidationError(_("Enter a room ID."))
    if len(room_id.encode()) > ROOM_ID_MAX_BYTES:
        raise ValidationError(
            _("A room ID is at most %(max)s bytes.") % {"max": ROOM_ID_MAX_BYTES}
        )
    # Printable ASCII, 0x20-0x7e (TUILiveKit error -2105's wording).
    if not all(32 <= ord(ch) < 127 for ch in room_id):
        raise ValidationError(_("A room ID uses printable ASCII characters only."))
    if room_id.startswith("@TGS#"):
        raise ValidationError(
            _("Room IDs starting with @TGS# are reserved by Tencent.")
        )
    return room_id


def validate_account(account: str) -> str:
    account = account.strip()
    if not account:
        raise ValidationError(_("Enter a user ID."))
    if len(account.encode()) > ACCOUNT_MAX_BYTES:
        raise ValidationError(
            _("A user ID is at most %(max)s bytes.") % {"max": ACCOUNT_MAX_BYTES}
        )
    return account


@transaction.atomic
def register_app(
    provider: str,
    app_id: int,
    secret_key: str,
    *,
    admins: list[str],
    callback_url: str = "",
    callback_token: str = "",
) -> SandboxApp:
    """Create or update the sandbox's copy of an app (what the provider console holds).

    An empty ``callback_url`` means this site's own /webhooks/tencent.
    """
    if provider not in registry.SANDBOX_PROVIDERS:
        raise ValidationError(
            _("Unknown provider %(provider)s.") % {"provider": repr(provider)}
        )
    if not secret_key:
        raise ValidationError(_("The secret key cannot be empty."))
    app, _created = SandboxApp.objects.select_for_update().get_or_create(
        provider=provider,
        app_id=int(app_id),
        defaults={"secret": secret_key},
    )
    app.secret = secret_key
    app.admins = [a for a in dict.fromkeys(admins) if a]
    app.callback_url = callback_url.strip()
    app.callback_token = callback_token
    app.save()
    return app


def create_room(app: SandboxApp, room_id: str, *, live: bool = True) -> SandboxRoom:
    """Create a room (idempotent: an existing room is returned unchanged)."""
    room, _created = SandboxRoom.objects.get_or_create(
        app=app, room_id=validate_room_id(room_id), defaults={"live": live}
    )
    return room


def destroy_room(app: SandboxApp, room_id: str) -> bool:
    deleted, _rows = SandboxRoom.objects.filter(app=app, room_id=room_id).delete()
    return bool(deleted)


def mute_member(
    app: SandboxApp, room_id: str, account: str, seconds: int
) -> MutedMember | None:
    """Mute ``account`` in the room for ``seconds`` (0 unmutes, 4294967295 = for ever).

    Raises SandboxRoom.DoesNotExist for an unknown room.
    """
    room = SandboxRoom.objects.get(app=app, room_id=room_id)
    account = validate_account(account)
    if seconds <= 0:
        MutedMember.objects.filter(room=room, account=account).delete()
        return None
    # Far enough for "for ever" and still a valid datetime on every database.
    seconds = min(seconds, 100 * 365 * 86400)
    muted, _created = MutedMember.objects.update_or_create(
        room=room,
        account=account,
        defaults={"until": timezone.now() + timedelta(seconds=seconds)},
    )
    return muted


def unmute_member(app: SandboxApp, room_id: str, account: str) -> None:
    mute_member(app, room_id, account, 0)


def is_muted(room: SandboxRoom, account: str) -> bool:
    return MutedMember.objects.active().filter(room=room, account=account).exists()


def mirror_provider_app(
    app: ProviderApp, *, rooms: Iterable[str] = (), callback_url: str = ""
) -> SandboxApp:
    """Register a dashboard app in the sandbox with the same id, secret, admin
    identifier and webhook token, and create ``rooms`` in it."""
    sandbox_app = register_app(
        app.provider,
        app.app_id,
        app.secret_key,
        admins=[app.identifier],
        callback_url=callback_url,
        callback_token=app.webhook_token or "",
    )
    for room_id in rooms:
        create_room(sandbox_app, room_id)
    return sandbox_app


def store_message(
    room: SandboxRoom,
    *,
    kind: str,
    sender: str,
    msg_body: list[dict[str, Any]] | None,
    cloud_custom_data: str = "",
    random: int | None = None,
    request_id: str = "",
    modified: bool = False,
) -> tuple[int, int]:
    """Give the room its next MsgSeq and, if ``msg_body`` is not None, keep the
    message as delivered. Returns (msg_seq, msg_time).

    The increment is one UPDATE inside the transaction, so concurrent senders
    (threads, processes) always get distinct, increasing sequence numbers.
    """
    msg_time = int(time.time())
    with transaction.atomic():
        SandboxRoom.objects.filter(pk=room.pk).update(
            last_msg_seq=F("last_msg_seq") + 1
        )
        msg_seq = SandboxRoom.objects.filter(pk=room.pk).values_list(
            "last_msg_seq", flat=True
        )[0]
        if msg_body is not None:
            SandboxMessage.objects.create(
                room=room,
                msg_seq=msg_seq,
                msg_time=msg_time,
                sender=sender,
                kind=kind,
                msg_body=msg_body,
                cloud_custom_data=cloud_custom_data,
                random=random,
                request_id=request_id,
                modified=modified,
            )
    return msg_seq, msg_time


def next_broadcast_seq(app: SandboxApp) -> int:
    with transaction.atomic():
        SandboxApp.objects.filter(pk=app.pk).update(
            broadcast_seq=F("broadcast_seq") + 1
        )
        return SandboxApp.objects.filter(pk=app.pk).values_list(
            "broadcast_seq", flat=True
        )[0]


def deliver_broadcast(
    app: SandboxApp,
    *,
    sender: str,
    msg_body: list[dict[str, Any]],
    cloud_custom_data: str,
    random: int,
) -> int:
    """Deliver one broadcast to every live room of the app; returns its MsgSeq."""
    seq = next_broadcast_seq(app)
    for room in SandboxRoom.objects.filter(app=app, live=True):
        store_message(
            room,
            kind=MessageKind.BROADCAST,
            sender=sender,
            msg_body=msg_body,
            cloud_custom_data=cloud_custom_data,
            random=random,
        )
    return seq
