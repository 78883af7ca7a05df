"""The vocabulary's labels (webhooks.vocabulary, Django-free) as translated choices,
and the short words pages show for a verdict. Pages and forms only: the webhook's
hot path never translates anything."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy, pgettext_lazy

from webhooks.vocabulary import ACTION_LABELS, DECISION_LABELS, KIND_LABELS


def label_of(labels: dict[str, Promise], code: str) -> str:
    """The translated label of ``code``; a code without one is shown as it is."""
    label = labels.get(code)
    return str(label) if label is not None else code


def _choices(labels: dict[str, str]) -> list[tuple[str, Promise]]:
    # The labels were marked with gettext_noop in vocabulary.py.
    return [(value, gettext_lazy(label)) for value, label in labels.items()]


KIND_CHOICES = _choices(KIND_LABELS)
ACTION_CHOICES = _choices(ACTION_LABELS)
DECISION_CHOICES = _choices(DECISION_LABELS)

# The one-word name of each verdict (the webhook's own words in English: tests and
# badges read "allow 1", "forbid 1").
VERDICT_WORDS: dict[str, Promise] = {
    "allow": pgettext_lazy("verdict", "allow"),
    "forbid": pgettext_lazy("verdict", "forbid"),
    "forbid_code": pgettext_lazy("verdict", "forbid_code"),
    "discard": pgettext_lazy("verdict", "discard"),
    "mask": pgettext_lazy("verdict", "mask"),
    "flag": pgettext_lazy("verdict", "flag"),
}


def verdict_word(action: str) -> str:
    """The translated word for a verdict."""
    return label_of(VERDICT_WORDS, action)


# Why the webhook refused a call (RejectionCount.reason; hotpath.error's reasons).
REFUSAL_LABELS: dict[str, Promise] = {
    "bad_method": gettext_lazy("not a POST"),
    "too_large": gettext_lazy("body over 1 MB"),
    "bad_length": gettext_lazy("bad Content-Length"),
    "bad_json": gettext_lazy("body not a JSON object"),
    "bad_field": gettext_lazy("a field of the wrong type"),
    "bad_sdkappid": gettext_lazy("bad SdkAppid"),
    "no_command": gettext_lazy("no CallbackCommand"),
    "unknown_app": gettext_lazy("unknown or disabled SdkAppid"),
    "no_sign": gettext_lazy("no Sign"),
    "bad_sign": gettext_lazy("wrong Sign"),
    "stale_sign": gettext_lazy("RequestTime too old or in the future"),
    "bad_request_time": gettext_lazy("RequestTime not Unix seconds"),
    "unavailable": gettext_lazy("rules unavailable"),
    "internal_failure": gettext_lazy("internal failure: the fail policy answered"),
    "unrecorded_decision": gettext_lazy("decision not stored in the log"),
}


def refusal_label(reason: str) -> str:
    """A person's words for a refusal reason."""
    return label_of(REFUSAL_LABELS, reason)
