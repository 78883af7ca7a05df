"""The navigation each role sees. Views check roles themselves; this only decides
which links to show. Items whose URL does not exist (a disabled feature) are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from liveadmin.roles import Role


@dataclass(frozen=True)
class NavItem:
    label: str | Promise
    url_name: str
    roles: frozenset[Role]
    section: str
    # Dotted path of a function of the signed-in user returning a number shown next to
    # the label (hidden when zero).
    count: str = ""


@dataclass(frozen=True)
class Section:
    """A navigation section: ``key`` stays English (``data-section``, tests), ``label``
    is what people read."""

    key: str
    label: str | Promise

    def __str__(self) -> str:
        return str(self.label)


# The sections' names in the language of the page, by key.
SECTION_LABELS: dict[str, str | Promise] = {
    "Messages": _("Messages"),
    "Moderation": _("Moderation"),
    "Audit": _("Audit"),
    "Administration": _("Administration"),
    "Sandbox": _("Sandbox"),
}

M, MOD, AUD, ADM = Role.MANAGER, Role.MODERATOR, Role.AUDITOR, Role.ADMIN

NAV: list[NavItem] = [
    NavItem(_("Send"), "messaging:send", frozenset({M}), "Messages"),
    NavItem(_("Templates"), "messaging:template-list", frozenset({M}), "Messages"),
    NavItem(_("Batches"), "messaging:batch-list", frozenset({M, ADM}), "Messages"),
    NavItem(
        _("Awaiting approval"),
        "messaging:batch-approvals",
        frozenset({M}),
        "Messages",
        count="messaging.models.awaiting_approval_count",
    ),
    NavItem(_("My sends"), "messaging:audit", frozenset({M}), "Messages"),
    NavItem(_("Blocklists"), "webhooks:blocklist-list", frozenset({MOD}), "Moderation"),
    NavItem(_("Try a message"), "webhooks:try", frozenset({MOD}), "Moderation"),
    NavItem(
        _("Review queue"),
        "webhooks:review-queue",
        frozenset({MOD}),
        "Moderation",
        count="webhooks.moderation.queue_count",
    ),
    NavItem(_("Decisions"), "webhooks:decision-list", frozenset({MOD}), "Moderation"),
    NavItem(_("Sanctions"), "webhooks:sanction-list", frozenset({MOD}), "Moderation"),
    NavItem(
        _("Escalation"), "webhooks:escalation-list", frozenset({MOD}), "Moderation"
    ),
    NavItem(_("Send log"), "messaging:audit", frozenset({AUD}), "Audit"),
    NavItem(_("Decision log"), "webhooks:decision-list", frozenset({AUD}), "Audit"),
    NavItem(_("Blocklist history"), "webhooks:change-list", frozenset({AUD}), "Audit"),
    NavItem(
        _("Provider apps"), "messaging:app-list", frozenset({ADM}), "Administration"
    ),
    NavItem(_("Users"), "user-list", frozenset({ADM}), "Administration"),
    NavItem(_("Sandbox rooms"), "sandbox:rooms", frozenset({M, MOD, ADM}), "Sandbox"),
]


def nav_for(
    roles: frozenset[Role],
) -> list[tuple[Section, list[tuple[str | Promise, str]]]]:
    """[(section, [(label, url), ...]), ...] for the given roles, in NAV order."""
    sections: dict[str, list[tuple[str | Promise, str]]] = {}
    for item in NAV:
        if not item.roles & roles:
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        sections.setdefault(item.section, []).append((item.label, url))
    return [
        (Section(key, SECTION_LABELS.get(key, key)), items)
        for key, items in sections.items()
    ]


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
