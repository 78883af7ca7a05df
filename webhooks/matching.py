"""INTERIM stand-in for the matcher (branch `matcher` owns this file and replaces it
at merge). Naive, slow, same interface as INTERFACES.md; only here so the webhook
can be built and tested before the real engine lands."""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

ORDER = {"forbid_user": 0, "forbid": 1, "forbid_code": 1, "discard": 2, "mask": 3}


@dataclass(frozen=True)
class Rule:
    id: int
    kind: str
    term: str
    action: str
    code: int | None = None
    info: str = ""
    expires_at: float | None = None


@dataclass(frozen=True)
class Hit:
    rule_id: int
    kind: str
    action: str
    field: str
    start: int
    end: int


@dataclass(frozen=True)
class Verdict:
    action: str
    error_code: int
    error_info: str
    hits: tuple[Hit, ...]
    msg_body: list | None
    cloud_custom_data: str | None


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def compile_regex_or_error(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    if re.search(r"\([^)]*[+*]\)[+*]", pattern):
        return "nested quantifiers can backtrack catastrophically"
    return None


class RuleSet:
    def __init__(self, rules: list[Rule], patterns: list[tuple[Rule, re.Pattern]]):
        self.rules = rules
        self.patterns = patterns

    @classmethod
    def compile(cls, rules: Iterable[Rule]) -> RuleSet:
        rules = list(rules)
        patterns = []
        for rule in rules:
            if rule.kind == "user":
                continue
            if rule.kind == "regex":
                patterns.append((rule, re.compile(rule.term, re.I)))
            elif rule.kind == "wildcard":
                parts = [re.escape(_norm(p)) for p in rule.term.split("*")]
                patterns.append((rule, re.compile(".*?".join(parts))))
            else:
                patterns.append((rule, re.compile(re.escape(_norm(rule.term)))))
        return cls(rules, patterns)

    def _live(self, rule: Rule, now: float) -> bool:
        return rule.expires_at is None or rule.expires_at > now

    def scan_text(
        self, text: str, now: float | None = None, field: str = ""
    ) -> list[Hit]:
        now = time.time() if now is None else now
        normed = _norm(text)
        hits, allowed = [], []
        for rule, pattern in self.patterns:
            if not self._live(rule, now):
                continue
            for m in pattern.finditer(normed if rule.kind != "regex" else text):
                if m.end() > m.start():
                    (allowed if rule.kind == "allow" else hits).append(
                        Hit(rule.id, rule.kind, rule.action, field, m.start(), m.end())
                    )
        return [
            h
            for h in hits
            if not any(a.start <= h.start and h.end <= a.end for a in allowed)
        ]

    def check(
        self,
        *,
        from_account: str,
        msg_body: list,
        cloud_custom_data: str | None,
        now: float | None = None,
    ) -> Verdict:
        now = time.time() if now is None else now
        hits: list[Hit] = []
        for rule in self.rules:
            if (
                rule.kind == "user"
                and rule.term == from_account
                and self._live(rule, now)
            ):
                hits.append(
                    Hit(
                        rule.id,
                        "user",
                        rule.action,
                        "From_Account",
                        0,
                        len(from_account),
                    )
                )
        fields = []
        for i, element in enumerate(msg_body):
            content = element.get("MsgContent") or {}
            for key in ("Text", "Data", "Desc", "Ext"):
                if isinstance(content.get(key), str):
                    fields.append((f"MsgBody[{i}].{key}", i, key, content[key]))
        if cloud_custom_data:
            fields.append(("CloudCustomData", None, None, cloud_custom_data))
        for name, _, _, text in fields:
            hits.extend(self.scan_text(text, now, name))
        if not hits:
            return Verdict("allow", 0, "", (), None, None)
        best = min(
            hits,
            key=lambda h: (
                0 if h.kind == "user" and h.action != "mask" else 1,
                ORDER[h.action],
            ),
        )
        rule = next(r for r in self.rules if r.id == best.rule_id)
        if best.action == "forbid":
            return Verdict("forbid", 1, "", tuple(hits), None, None)
        if best.action == "forbid_code":
            return Verdict(
                "forbid_code", rule.code or 10100, rule.info, tuple(hits), None, None
            )
        if best.action == "discard":
            return Verdict("discard", 2, "", tuple(hits), None, None)
        body = [
            {"MsgType": e["MsgType"], "MsgContent": dict(e["MsgContent"])}
            for e in msg_body
        ]
        ccd = None
        for name, i, key, text in fields:
            spans = [h for h in hits if h.field == name]
            if not spans:
                continue
            chars = list(text)
            for h in spans:
                for j in range(h.start, min(h.end, len(chars))):
                    chars[j] = "*"
            if i is None:
                ccd = "".join(chars)
            else:
                body[i]["MsgContent"][key] = "".join(chars)
        return Verdict("mask", 0, "", tuple(hits), body, ccd)
