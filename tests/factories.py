"""Small factories: defaults with setdefault, overrides as keyword arguments."""

from __future__ import annotations

import itertools
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from liveadmin.roles import Role
from messaging.models import ProviderApp, SendRecord

_seq = itertools.count(1)
PASSWORD = "pass-for-tests"


def make_user(username: str | None = None, *, role: Role | None = None, **fields: Any):
    User = get_user_model()
    fields.setdefault("is_superuser", role is Role.ADMIN)
    fields.setdefault("is_staff", role is Role.ADMIN)
    user = User.objects.create_user(
        username or f"user{next(_seq)}", password=PASSWORD, **fields
    )
    if role is not None:
        user.groups.add(Group.objects.get(name=role.value))
    if role is Role.ADMIN:
        make_totp_device(user)  # administrators must have a second factor
    return user


def make_totp_device(user: Any) -> Any:
    """A confirmed authenticator with a fixed secret (see totp_code)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.create(
        user=user, name="Authenticator app", key=TOTP_KEY, confirmed=True
    )


TOTP_KEY = "3132333435363738393031323334353637383930"  # RFC 6238's test secret


def totp_code(key_hex: str = TOTP_KEY, *, drift: int = 0) -> str:
    """The code an authenticator app shows now for ``key_hex`` (RFC 6238, 30 s, 6 digits)."""
    from django_otp.oath import totp

    return f"{totp(bytes.fromhex(key_hex), drift=drift):06d}"


def make_app(**fields: Any) -> ProviderApp:
    n = next(_seq)
    fields.setdefault("name", f"app-{n}")
    fields.setdefault("provider", "tencent")
    fields.setdefault("app_id", 1400000000 + n)
    fields.setdefault(
        "region", "singapore" if fields["provider"] == "tencent" else "global"
    )
    fields.setdefault("identifier", "administrator")
    fields.setdefault("secret_key", f"secret-key-{n}-0123456789abcdef")
    return ProviderApp.objects.create(**fields)


def make_send_record(**fields: Any) -> SendRecord:
    """A send log entry as the send path leaves it after an OK answer."""
    n = next(_seq)
    if "app" not in fields:
        fields["app"] = make_app()
    if "user" not in fields:
        fields["user"] = make_user(role=Role.MANAGER)
    fields.setdefault("kind", "text")
    fields.setdefault("room_id", "room-1")
    fields.setdefault("sender", "host")
    fields.setdefault("random", 1000 + n)
    fields.setdefault("outcome", "ok")
    fields.setdefault("action_status", "OK" if fields["outcome"] == "ok" else "FAIL")
    fields.setdefault("error_code", 0 if fields["outcome"] == "ok" else 10002)
    fields.setdefault("request_id", f"req-{n}")
    fields.setdefault("http_status", 200)
    fields.setdefault("latency_ms", 42)
    fields.setdefault("attempts", 1)
    fields.setdefault(
        "request_body",
        {
            "GroupId": fields["room_id"],
            "From_Account": fields["sender"],
            "Random": fields["random"],
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}],
        },
    )
    fields.setdefault(
        "response_body",
        {
            "ActionStatus": fields["action_status"],
            "ErrorCode": fields["error_code"],
            "ErrorInfo": fields.get("error_info", ""),
            "RequestId": fields["request_id"],
        },
    )
    return SendRecord.objects.create(**fields)


def make_batch(app: ProviderApp | None = None, **fields: Any):
    """A batch of room text messages (one waiting record per room), not yet run."""
    from messaging.services.batches import start_batch

    rooms = fields.pop("rooms", ["room-1", "room-2"])
    kind = fields.pop("kind", "text")
    actor = fields.pop("actor", None) or make_user(role=Role.MANAGER)
    message = fields.pop("fields", {"sender": "host-1", "text": "hello"})
    return start_batch(app or make_app(), kind, message, rooms, actor=actor, **fields)


def make_sandbox_app(
    app: ProviderApp, *, rooms: tuple[str, ...] = ("room-1",), callback_url: str = ""
):
    """Mirror ``app`` into the sandbox provider with ``rooms`` created."""
    from messaging.sandbox.services import mirror_provider_app

    return mirror_provider_app(app, rooms=rooms, callback_url=callback_url)
