"""Dry run: what a draft entry (or a whole import) would have done to the app's
recent messages, before anything is saved.

A message counts as changed when the draft would have answered it more strictly
than the webhook did (allow < flag < mask < discard < forbid), or, for an allow
draft, when the app's rules plus the draft would have let through a message the
webhook stopped. Only the draft's own rules are run over every message; the
whole rule set runs only over the few messages the webhook did not allow."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from messaging.models import ProviderApp
from webhooks import rules_cache
from webhooks.matching import NormText, Rule, RuleSet, fold_pattern, required_literal
from webhooks.recent import RecentMessage, recent

RANK = {"allow": 0, "flag": 1, "mask": 2, "discard": 3, "forbid": 4, "forbid_code": 4}


@dataclass
class DryRun:
    would_change: int = 0
    of: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    by_action: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "would_change": self.would_change,
            "of": self.of,
            "by_action": self.by_action,
            "examples": self.examples,
            "seconds": round(self.seconds, 3),
        }


def _body(text: str) -> list[dict[str, Any]]:
    return [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]


def draft_rules(drafts: list[dict[str, Any]]) -> list[Rule]:
    """Clean entry values (kind, term, action, code, info) as matcher rules; the ids
    are negative so they never collide with stored entries."""
    return [
        Rule(
            id=-(i + 1),
            kind=d["kind"],
            term=d["term"],
            action=d["action"],
            code=d.get("code"),
            info=d.get("info") or "",
        )
        for i, d in enumerate(drafts)
    ]


def _prefilter(
    rules: list[Rule],
) -> tuple[list[list[str]], list[str], set[str]] | None:
    """(strict pieces that must all occur, per word or wildcard; literals one of which a
    regex needs; user IDs), or None when some rule (a regex without a required
    literal, a symbol-only word) can match without them. Words and wildcards match
    on the strict normalised text and regexes on the light one, so a message lacking
    them cannot match: the exact check runs only on the others."""
    pieces: list[list[str]] = []
    literals: list[str] = []
    users: set[str] = set()
    for rule in rules:
        if rule.kind == "user":
            users.add(rule.term)
        elif rule.kind == "word":
            strict = NormText(rule.term).strict
            if not strict:
                return None
            pieces.append([strict])
        elif rule.kind == "wildcard":
            parts = [NormText(p).strict for p in rule.term.split("*")]
            pieces.append([p for p in parts if p])
        elif rule.kind == "regex":
            literal = required_literal(fold_pattern(rule.term))
            if not literal:
                return None
            literals.append(literal)
        else:
            return None
    return pieces, literals, users


def _candidate(
    m: RecentMessage, pieces: list[list[str]], literals: list[str], users: set[str]
) -> bool:
    if m.sender in users:
        return True
    if not pieces and not literals:
        return False
    norm = NormText(m.text)
    if any(literal in norm.light for literal in literals):
        return True
    return any(all(p in norm.strict for p in need) for need in pieces)


def dry_run(
    app: ProviderApp,
    drafts: list[dict[str, Any]],
    *,
    messages: list[RecentMessage] | None = None,
    max_examples: int = 5,
) -> DryRun:
    """Run ``drafts`` (clean entry values) over the app's recent messages."""
    started = time.perf_counter()
    rules = draft_rules(drafts)
    blocking = [r for r in rules if r.kind != "allow"]
    allows = [r for r in rules if r.kind == "allow"]
    draft_set = RuleSet.compile(blocking) if blocking else None
    prefilter = _prefilter(blocking)
    full_set = None
    if allows:
        snapshot = rules_cache.rules.get(force_check=True)
        current = snapshot.by_pk.get(app.pk)
        base = list(current.ruleset.rules) if current and current.ruleset else []
        full_set = RuleSet.compile(base + rules)
    result = DryRun()
    source = messages if messages is not None else recent.read(app.pk)
    now = time.time()
    for m in source:
        result.of += 1
        was = RANK.get(m.action, 0)
        verdict = None
        if draft_set is not None and (prefilter is None or _candidate(m, *prefilter)):
            v = draft_set.check(
                from_account=m.sender,
                msg_body=_body(m.text),
                cloud_custom_data=None,
                now=now,
            )
            if v.action != "allow" and RANK[v.action] > was:
                verdict = v
        if verdict is None and full_set is not None and was > 0:
            v = full_set.check(
                from_account=m.sender,
                msg_body=_body(m.text),
                cloud_custom_data=None,
                now=now,
            )
            if RANK.get(v.action, 0) < was:
                verdict = v
        if verdict is None:
            continue
        result.would_change += 1
        result.by_action[verdict.action] = result.by_action.get(verdict.action, 0) + 1
        if len(result.examples) < max_examples:
            result.examples.append(
                {
                    "at": round(m.at, 3),
                    "room": m.room_id,
                    "sender": m.sender,
                    "text": m.text[:300],
                    "was": m.action,
                    "would_be": verdict.action,
                }
            )
    result.seconds = time.perf_counter() - started
    return result
