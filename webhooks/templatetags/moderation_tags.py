"""{% webhook_verdict record %}: what the webhook did to a message LiveAdmin sent."""

from __future__ import annotations

from typing import Any

from django import template

from webhooks import moderation

register = template.Library()


@register.inclusion_tag("webhooks/send_decision.html")
def webhook_verdict(record: Any) -> dict[str, Any]:
    decision = moderation.decision_for_send(record)
    return {
        "decision": decision,
        "verb": moderation.WEBHOOK_VERB.get(decision.action, "") if decision else "",
        "record": record,
    }
