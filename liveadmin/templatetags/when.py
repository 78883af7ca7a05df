"""``{{ value|when }}``: a time the browser shows in the viewer's time zone.

The server writes the time in the active zone (UTC by default), named, inside
``<time data-local>``; static/js/localtime.js rewrites it in the browser's zone with the zone's name, and keeps UTC on hover.
Both write it the way the page's language does (Django's locale formats here,
``<html lang>`` for Intl there). Accepts a datetime or Unix seconds (a provider's
MsgTime).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils import formats, timezone, translation
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def when(
    value: datetime | int | float | str | None, style: str = ""
) -> SafeString | str:
    if value is None or value == "":
        return ""
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        value = datetime.fromtimestamp(int(value), tz=UTC)
    if not isinstance(value, datetime):
        return str(value)
    utc = value.astimezone(UTC)
    # The page's active zone (UTC unless a view activated the viewer's, as the send
    # log does with its tz parameter) until the browser's script takes over.
    local = timezone.localtime(value)
    text = _local_text(local, seconds=style == "seconds")
    return format_html(
        '<time data-local{} datetime="{}" title="{} UTC">{} {}</time>',
        {"seconds": " data-seconds", "short": " data-short"}.get(style, ""),
        utc.isoformat(),
        utc.strftime("%Y-%m-%d %H:%M:%S"),
        text,
        local.tzname() or "UTC",
    )


def _local_text(local: datetime, *, seconds: bool) -> str:
    """The time as the page's language writes it: ISO-like digits in English (as
    before), the language's own DATE_FORMAT (Django's locale formats) and a 24-hour
    clock in the others."""
    time_format = "H:i:s" if seconds else "H:i"
    if (translation.get_language() or "en").startswith("en"):
        return formats.date_format(local, f"Y-m-d {time_format}")
    return "{} {}".format(
        formats.date_format(local, "DATE_FORMAT"),
        formats.time_format(local, time_format),
    )
