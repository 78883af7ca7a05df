"""The closed sets of the moderation webhook, declared once: entry kinds, actions, what a
verdict can be, and the provider's own-code range. Django-free, so the matcher, the
models' choices, the forms, the command and the sandbox all build on this one module."""

from __future__ import annotations


def gettext_noop(message: str) -> str:
    """Marks a label for `make messages` (same name as Django's, which makemessages
    knows) without importing Django; pages translate it when they show it
    (webhooks.labels)."""
    return message


# Entry kinds, with the labels moderators see.
KIND_LABELS: dict[str, str] = {
    "word": gettext_noop("Word or phrase"),
    "wildcard": gettext_noop("Wildcard pattern (*)"),
    "regex": gettext_noop("Regular expression"),
    "user": gettext_noop("Blocked user ID"),
    "allow": gettext_noop("Allow-list phrase"),
}
KINDS: tuple[str, ...] = tuple(KIND_LABELS)

# What a matching entry does, with the labels moderators see.
ACTION_LABELS: dict[str, str] = {
    "forbid": gettext_noop("Forbid (sender gets 10016)"),
    "forbid_code": gettext_noop("Forbid with my code and text"),
    "discard": gettext_noop("Discard silently"),
    "mask": gettext_noop("Mask with asterisks"),
    "flag": gettext_noop("Deliver and queue for review"),
}
ACTIONS: tuple[str, ...] = tuple(ACTION_LABELS)

# What the decision log calls each action.
DECISION_LABELS: dict[str, str] = {
    "forbid": gettext_noop("Forbidden"),
    "forbid_code": gettext_noop("Forbidden with code"),
    "discard": gettext_noop("Discarded"),
    "mask": gettext_noop("Masked"),
    "flag": gettext_noop("Flagged for review"),
}
# Choices for model fields and forms are built from the labels above, translated,
# in webhooks.labels.
# Every answer the webhook can give (allowed messages are only counted).
VERDICTS: tuple[str, ...] = ("allow", *ACTIONS)

# The documented range for "forbid and pass my own code and text to the sender"
# (docs/providers.md, "Before-send webhook").
FORBID_CODE_MIN, FORBID_CODE_MAX = 10100, 10200
FORBID_CODES = range(FORBID_CODE_MIN, FORBID_CODE_MAX + 1)

# ErrorCode of each action's answer (forbid_code answers with the entry's own code).
ERROR_CODE: dict[str, int] = {"forbid": 1, "discard": 2, "mask": 0, "flag": 0}
# Precedence when several entries match: the strongest action wins.
# A flag delivers the message unchanged and queues it for review.
RANK: dict[str, int] = {
    "forbid": 4,
    "forbid_code": 4,
    "discard": 3,
    "mask": 2,
    "flag": 1,
}
