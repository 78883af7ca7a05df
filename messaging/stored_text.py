"""Texts LiveAdmin writes into the database in English, and their translation for
the page that shows them.

A batch's pause reason, the ErrorInfo LiveAdmin gives a send it closed itself
(cancelled, or a worker that died holding it) and why a walk of the hash chain
failed are stored as written here, in English, and never change: they are part
of the log. A page shows them in the
reader's language by recognising the stored form again (``display``); a text that
matches no form (written before a form changed) is shown as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.utils.translation import gettext, gettext_noop

# The stored forms ({name} fields are filled in with str.format).
PAUSED_BY = "Paused by {user}."
PAUSED_APP_DISABLED = (
    "Paused automatically: the app {app} was disabled. "
    "An administrator can enable it again; then resume."
)
PAUSED_AFTER_FAILURES = (
    "Paused automatically after {threshold} provider failures in a row, "
    "which retrying cannot fix. Last error{code}: {last} Fix the cause, then resume."
)
PAUSED_OUTAGE = (
    "Paused automatically: sends have been failing for {minutes} min "
    "(longer than {limit} min). Last error: {reason} Resume once the provider or "
    "network is back."
)
CANCELLED_INFO = "Cancelled by {user} before it was sent."
DIED_HOLDING_INFO = gettext_noop(
    "The worker sending this room stopped before the provider's answer was recorded. "
    "The message may or may not have been delivered, so it was not sent again by "
    "itself: check the room, then re-send it explicitly if it is missing."
)
INTERRUPTED_INFO = gettext_noop(
    "The send was interrupted before the provider's answer was recorded (the process "
    "stopped mid-request). It may or may not have been delivered: check the room "
    "before sending it again."
)

# Why a walk of the hash chain failed (AuditVerification.problem; also printed by
# ``auditlog verify``, in English).
CHAIN_LINK_MISSING = (
    "link #{expected} is missing (the chain jumps to #{found}, send {record}): "
    "a send or its link was removed"
)
CHAIN_SEND_CHANGED = (
    "send {record} (link #{seq}) does not match its link: it was changed, or a send "
    "was inserted, removed or reordered at this point"
)
CHAIN_REWRITTEN = (
    "link #{seq} differs from the one verified at {at}: the chain was rewritten"
)
CHAIN_SHORTENED = (
    "the chain ends at #{end} but was verified to #{verified} at {at}: "
    "links were removed"
)
CHAIN_OUT_OF_BAND = (
    "send {record} is final but not in the chain: it was inserted out of band"
)


def _pattern(form: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", form)
    regex = "".join(
        f"(?P<{part}>.*?)" if i % 2 else re.escape(part) for i, part in enumerate(parts)
    )
    return re.compile(regex, re.DOTALL)


def _embedded(text: str) -> str:
    """A provider explanation or ErrorInfo quoted in a stored text: translated when
    it is one of LiveAdmin's own sentences, else as stored."""
    text = text.strip()
    return gettext(text) if text else text


def _paused_after_failures(m: dict[str, str]) -> str:
    values = {"threshold": m["threshold"], "last": _embedded(m["last"])}
    if m["code"].strip():
        return gettext(
            "Paused automatically after %(threshold)s provider failures in a row, "
            "which retrying cannot fix. Last error %(code)s: %(last)s Fix the cause, "
            "then resume."
        ) % {**values, "code": m["code"].strip()}
    return (
        gettext(
            "Paused automatically after %(threshold)s provider failures in a row, "
            "which retrying cannot fix. Last error: %(last)s Fix the cause, then resume."
        )
        % values
    )


_FORMS: list[tuple[re.Pattern[str], Callable[[dict[str, str]], str]]] = [
    (
        _pattern(PAUSED_BY),
        lambda m: gettext("Paused by %(user)s.") % m,
    ),
    (
        _pattern(PAUSED_APP_DISABLED),
        lambda m: (
            gettext(
                "Paused automatically: the app %(app)s was disabled. "
                "An administrator can enable it again; then resume."
            )
            % m
        ),
    ),
    (_pattern(PAUSED_AFTER_FAILURES), _paused_after_failures),
    (
        _pattern(PAUSED_OUTAGE),
        lambda m: (
            gettext(
                "Paused automatically: sends have been failing for %(minutes)s min "
                "(longer than %(limit)s min). Last error: %(reason)s Resume once the "
                "provider or network is back."
            )
            % {**m, "reason": _embedded(m["reason"])}
        ),
    ),
    (
        _pattern(CHAIN_LINK_MISSING),
        lambda m: (
            gettext(
                "link #%(expected)s is missing (the chain jumps to #%(found)s, send "
                "%(record)s): a send or its link was removed"
            )
            % m
        ),
    ),
    (
        _pattern(CHAIN_SEND_CHANGED),
        lambda m: (
            gettext(
                "send %(record)s (link #%(seq)s) does not match its link: it was changed, "
                "or a send was inserted, removed or reordered at this point"
            )
            % m
        ),
    ),
    (
        _pattern(CHAIN_REWRITTEN),
        lambda m: (
            gettext(
                "link #%(seq)s differs from the one verified at %(at)s: the chain was "
                "rewritten"
            )
            % m
        ),
    ),
    (
        _pattern(CHAIN_SHORTENED),
        lambda m: (
            gettext(
                "the chain ends at #%(end)s but was verified to #%(verified)s at %(at)s: "
                "links were removed"
            )
            % m
        ),
    ),
    (
        _pattern(CHAIN_OUT_OF_BAND),
        lambda m: (
            gettext(
                "send %(record)s is final but not in the chain: it was inserted out of band"
            )
            % m
        ),
    ),
    (
        _pattern(CANCELLED_INFO),
        lambda m: gettext("Cancelled by %(user)s before it was sent.") % m,
    ),
]


def display(stored: str) -> str:
    """``stored`` in the reader's language, or as stored when it is not one of the
    forms above."""
    if not stored:
        return stored
    if stored in (DIED_HOLDING_INFO, INTERRUPTED_INFO):
        return gettext(stored)
    for pattern, translate in _FORMS:
        if match := pattern.fullmatch(stored):
            return translate(match.groupdict())
    return stored


def display_reason(stored: str) -> str:
    """A batch's failing reason (a provider explanation or ErrorInfo)."""
    return _embedded(stored)
