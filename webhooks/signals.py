from __future__ import annotations

from typing import Any

from webhooks import version


def app_changed(sender: Any, **kwargs: Any) -> None:
    """A provider app changed: the webhook's in-memory app map must follow."""
    if kwargs.get("raw"):  # loaddata
        return
    version.bump()
