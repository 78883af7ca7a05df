"""Provider clients: one module per provider (tencent, zego), shared parts in base.

No Django views or models here; services call ``send`` with ``Credentials`` and a
request built by the provider module. The provider modules are imported lazily so
that importing ``messaging.providers.regions`` (models do) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from messaging.providers.base import Credentials, SendResult

PROVIDER_KINDS: dict[str, tuple[str, ...]] = {
    "tencent": ("text", "custom", "broadcast"),
    "zego": ("command",),
}


def explain(provider: str, code: int | None) -> str:
    """A human explanation of a provider's result code, for the UI."""
    if provider == "tencent":
        from messaging.providers import tencent

        return tencent.explain(code)
    if provider == "zego":
        from messaging.providers import zego

        return zego.explain(code)
    return ""


def explain_drop(provider: str, drop_reason: str) -> str:
    """Why an accepted send was not delivered (outcome ``dropped``)."""
    if provider == "tencent":
        from messaging.providers import tencent

        return tencent.drop_explanation(drop_reason)
    return "Accepted, but none of the recipients got it (they are offline)."


def send(credentials: Credentials, kind: str, body: dict) -> SendResult:
    """Send a body built by the provider module (``build_request``) and classify the answer."""
    if credentials.provider == "tencent":
        from messaging.providers import tencent

        return tencent.send(credentials, kind, body)
    if credentials.provider == "zego" and kind == "command":
        from messaging.providers import zego

        return zego.send(credentials, body)
    raise ValueError(f"{credentials.provider} cannot send {kind!r}")
