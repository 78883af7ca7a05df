"""The navigation each role sees. Views check roles themselves; this only decides
which links to show. Items whose URL does not exist (a disabled feature) are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from liveadmin.roles import Role


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    roles: frozenset[Role]
    section: str
    # Dotted path of a function of the signed-in user returning a number shown next to
    # the label (hidden when zero).
    count: str = ""


M, MOD, AUD, ADM = Role.MANAGER, Role.MODERATOR, Role.AUDITOR, Role.ADMIN

NAV: list[NavItem] = [
    NavItem("Send", "messaging:send", frozenset({M}), "Messages"),
    NavItem("Templates", "messaging:template-list", frozenset({M}), "Messages"),
    NavItem("Batches", "messaging:batch-list", frozenset({M, ADM}), "Messages"),
    NavItem(
        "Awaiting approval",
        "messaging:batch-approvals",
        frozenset({M}),
        "Messages",
        count="messaging.models.awaiting_approval_count",
    ),
    NavItem("My sends", "messaging:audit", frozenset({M}), "Messages"),
    NavItem("Blocklists", "webhooks:blocklist-list", frozenset({MOD}), "Moderation"),
    NavItem("Try a message", "webhooks:try", frozenset({MOD}), "Moderation"),
    NavItem(
        "Review queue",
        "webhooks:review-queue",
        frozenset({MOD}),
        "Moderation",
        count="webhooks.moderation.queue_count",
    ),
    NavItem("Decisions", "webhooks:decision-list", frozenset({MOD}), "Moderation"),
    NavItem("Sanctions", "webhooks:sanction-list", frozenset({MOD}), "Moderation"),
    NavItem("Escalation", "webhooks:escalation-list", frozenset({MOD}), "Moderation"),
    NavItem("Send log", "messaging:audit", frozenset({AUD}), "Audit"),
    NavItem("Decision log", "webhooks:decision-list", frozenset({AUD}), "Audit"),
    NavItem("Blocklist history", "webhooks:change-list", frozenset({AUD}), "Audit"),
    NavItem("Provider apps", "messaging:app-list", frozenset({ADM}), "Administration"),
    NavItem("Users", "user-list", frozenset({ADM}), "Administration"),
    NavItem("Sandbox rooms", "sandbox:rooms", frozenset({M, MOD, ADM}), "Sandbox"),
]


def nav_for(roles: frozenset[Role]) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(section, [(label, url), ...]), ...] for the given roles, in NAV order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    for item in NAV:
        if not item.roles & roles:
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        sections.setdefault(item.section, []).append((item.label, url))
    return list(sections.items())


def nav_counts(roles: frozenset[Role], user: Any) -> list[tuple[str, int]]:
    """[(url, count), ...] for the items with a count the given roles see."""
    out = []
    for item in NAV:
        if item.count and item.roles & roles:
            try:
                url = reverse(item.url_name)
            except NoReverseMatch:
                continue
            out.append((url, import_string(item.count)(user)))
    return out
