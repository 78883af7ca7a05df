"""{% webhook_verdict record %}: what the webhook did to a message LiveAdmin sent;
and filters that show the webhook's codes (verdicts, readings, changed objects) in
the page's language."""

from __future__ import annotations

import re
from typing import Any

from django import template
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy, pgettext, pgettext_lazy

from webhooks import labels, moderation

register = template.Library()


@register.inclusion_tag("webhooks/send_decision.html")
def webhook_verdict(record: Any) -> dict[str, Any]:
    decision = moderation.decision_for_send(record)
    return {
        "decision": decision,
        "verb": moderation.WEBHOOK_VERB.get(decision.action, "") if decision else "",
        "record": record,
    }


@register.filter
def verdict_word(action: str) -> str:
    """allow, forbid, ... in the page's language."""
    return labels.verdict_word(action)


# What each answer does to the message ("Try a message").
VERDICT_EXPLAINED = {
    "allow": gettext_lazy("Delivered as sent."),
    "forbid": gettext_lazy(
        "Not delivered: the sender gets error 10016 (ErrorCode 1 in the answer)."
    ),
    "forbid_code": gettext_lazy(
        "Not delivered: the sender gets the entry's own code and error text."
    ),
    "discard": gettext_lazy(
        "Not delivered, and the sender is not told (ErrorCode 2 in the answer)."
    ),
    "mask": gettext_lazy("Delivered with the matched text replaced by asterisks."),
    "flag": gettext_lazy("Delivered unchanged, and queued for review."),
}


@register.filter
def verdict_explained(action: str) -> str:
    return str(VERDICT_EXPLAINED.get(action, ""))


# The matcher's readings of a text (webhooks.matching.readings).
READING_LABELS: dict[str, Promise] = {
    "folded": pgettext_lazy("reading", "folded"),
    "exact": pgettext_lazy("reading", "exact"),
    "leet": pgettext_lazy("reading", "leet"),
    "decoded": pgettext_lazy("reading", "decoded"),
    "displayed": pgettext_lazy("reading", "displayed"),
}


@register.filter
def reading_label(name: str) -> str:
    return labels.label_of(READING_LABELS, name)


# BlocklistChange.object_type, as the change history names it.
OBJECT_TYPE_LABELS: dict[str, Promise] = {
    "blocklist": pgettext_lazy("changed object", "blocklist"),
    "entry": pgettext_lazy("changed object", "entry"),
    "sanction": pgettext_lazy("changed object", "sanction"),
    "escalation": pgettext_lazy("changed object", "escalation"),
}


@register.filter
def object_type_label(object_type: str) -> str:
    return labels.label_of(OBJECT_TYPE_LABELS, object_type)


# Explanations LiveAdmin itself stores in English (audit data, kept as stored) and the
# translated text a page shows for them. A reason a moderator typed is shown as typed.
_ESCALATION_REASON = re.compile(r"escalation: (\d+) hits within (\d+) s")
_DECISION_REASON = re.compile(r"decision #(\d+): (.*)", re.DOTALL)
_REVIEW_NOTE = re.compile(r"from review of decision #(\d+)")


@register.filter
def sanction_reason(sanction: Any) -> str:
    """Why a sanction was imposed, in the page's language when LiveAdmin wrote it
    (webhooks.enforcement for escalation, moderation.mute_from_decision)."""
    reason = sanction.reason or ""
    if sanction.source == "escalation" and (m := _ESCALATION_REASON.fullmatch(reason)):
        return gettext("escalation: %(hits)s hits within %(seconds)s s") % {
            "hits": m[1],
            "seconds": m[2],
        }
    if m := _DECISION_REASON.fullmatch(reason):
        return gettext("decision #%(id)s: %(text)s") % {"id": m[1], "text": m[2]}
    return reason


@register.filter
def sanction_by(sanction: Any) -> str:
    """Who imposed a sanction: a user name, or the escalation rule."""
    if sanction.source == "escalation" and sanction.created_by == "escalation":
        return pgettext("imposed by", "escalation")
    return sanction.created_by


@register.filter
def entry_note(note: str) -> str:
    """An entry's note; the one LiveAdmin writes (added from the review queue) in the
    page's language."""
    if m := _REVIEW_NOTE.fullmatch(note or ""):
        return gettext("from review of decision #%(id)s") % {"id": m[1]}
    return note
