"""The compiled rule set of one app: build once per change, then only read."""

from __future__ import annotations

import bisect
import gc
import logging
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import ahocorasick_rs
import regex

from webhooks.matching.charclass import CharClass
from webhooks.matching.fold import (
    FOLD,
    FOLDABLE,
    LEET,
    decode_escapes,
    display_order,
)
from webhooks.matching.message import iter_texts, joinable_texts, mask_message
from webhooks.matching.normalise import NormText
from webhooks.matching.regex_safety import (
    REGEX_BUDGET,
    REGEX_TIMEOUT,
    fold_pattern,
    required_literals,
)
from webhooks.matching.verdict import ALLOW, Hit, Rule, Verdict
from webhooks.vocabulary import (
    ACTIONS,
    ERROR_CODE,
    FORBID_CODE_MAX,
    FORBID_CODE_MIN,
    KINDS,
    RANK,
)

logger = logging.getLogger(__name__)

# Patterns per automaton: building one holds the GIL (ahocorasick-rs builds in Rust without
# releasing it), so a 100,000-term rebuild in a background thread is cut into pieces between
# which the answering threads run; scanning a few automata instead of one costs little.
SHARD_TERMS = 20_000
# Rules compiled between two offers of the GIL to the answering threads (about 1.5 ms of
# work): compiled code does not offer it every 5 ms as the interpreter does.
_YIELD_EVERY = 256
# Folded form (letters only, phrase gaps) of recent terms, per folding: a rebuild after one
# change re-reads every entry, and normalising 100,000 terms costs far more than the automaton.
_TERM_CACHE: dict[tuple[str, str], tuple[str, frozenset[int]]] = {}
_TERM_CACHE_MAX = 500_000
# How far a "*" inside a wildcard pattern may stretch (normalised characters).
MAX_WILDCARD_GAP = 64
# More overlapping automaton matches than this in one string is a flood (see RuleSet._scan_terms).
FLOOD_MATCHES = 20_000


@dataclass
class _Term:
    """One listed term on the automaton: a word/allow rule or one piece of a wildcard."""

    rule_index: int
    gaps: frozenset[int]  # separator positions inside the listed term (phrase spaces)
    piece: int = -1  # wildcard piece number, -1 for words and allow entries
    allow: bool = False


@dataclass
class _Group:
    """The word, wildcard and allow terms folded one way (their patterns are on the rule
    set's one automaton, filed under the group's number)."""

    table: dict[int, str] | None  # None: exact (no folding); FOLD; LEET
    ascii_too: bool  # the table changes ASCII characters too (LEET)
    trigger: CharClass | None  # finds a character the table changes (FOLD)
    terms: list[list[_Term]]


# A regex filed under its longest literal: (rule index, compiled, the other literals it
# needs (checked in the text when the longest is found), whether it needs a digit).
_Prefiltered = tuple[int, regex.Pattern, tuple[str, ...], bool]
_DIGIT = re.compile(r"\d")


@dataclass
class _Wildcard:
    rule_index: int
    pieces: int
    lead: bool  # pattern starts with "*"
    trail: bool  # pattern ends with "*"


@dataclass
class _Candidate:
    rule_index: int
    field: str
    start: int  # original coordinates
    end: int


@dataclass
class RuleSet:
    """The blocklist entries of one app, compiled: build with :meth:`compile`, then only read.

    ``rules`` are the entries kept (hits refer to them by id); ``skipped`` lists (rule id, reason) for
    entries that could not be compiled; ``regex_timeouts`` counts searches that ran out of time."""

    rules: list[Rule]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    regex_timeouts: int = 0
    build_seconds: float = 0.0
    # One automaton per way of folding (see _Group): exact, folded (the default), leet.
    _groups: list[_Group] = field(default_factory=list)
    _wildcards: dict[int, _Wildcard] = field(default_factory=dict)
    _regexes: list[tuple[int, regex.Pattern, list[str], bool]] = field(
        default_factory=list
    )
    _users: dict[str, list[int]] = field(default_factory=dict)
    _has_text_rules: bool = False
    # Regex prefilter: regexes without a required literal always run; the others only when an
    # automaton over the case-folded text finds their literal.
    _regex_always: list[tuple[int, regex.Pattern]] = field(default_factory=list)
    # Per literal (its number among the literals): (rule index, pattern, the numbers of every
    # literal it needs, needs a digit), filed under its longest literal.
    _regex_by_literal: list[list[_Prefiltered]] = field(default_factory=list)
    # Emoji / symbol-only words and allow entries, matched on the light text: (rule index, is allow).
    _symbol_terms: list[list[tuple[int, bool]]] = field(default_factory=list)
    # Every pattern of every kind on one automaton (see _Automaton): one search per message.
    _automaton: _Automaton | None = None

    @classmethod
    def compile(cls, rules: Iterable[Rule], *, long_lived: bool = False) -> RuleSet:
        """Build the rule set. The cyclic garbage collector is paused meanwhile: the
        hundreds of thousands of objects a large list creates would otherwise trigger full
        collections that hold the GIL for hundreds of milliseconds (measured: 0.77 s stalls
        of the answering threads at 100,000 terms with it, 0.08 s without, on a busy
        machine) and double the build time. Nothing built here forms a cycle.

        ``long_lived`` (the rules cache's rule sets, kept until the next build): what the
        build made is then moved out of the collector's sight (``gc.freeze``, before
        collecting resumes), and refcounting frees it after the next build. Left in the
        youngest generation, the first collection after the build walked all of it, 34
        ms at 100,000 terms holding the GIL, and the full collections after that again
        and again (the web worker froze its heap once the first rules were in:
        webhooks/heap.py; a rebuild's rules were outside it). The freeze takes every
        object alive then, so a short-lived rule set (a dry run's) is not frozen: a
        reference cycle among a request's objects would never be collected."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            return cls._compile(rules)
        finally:
            if collecting:
                if long_lived:
                    gc.freeze()
                gc.enable()

    @classmethod
    def _compile(cls, rules: Iterable[Rule]) -> RuleSet:
        started = time.perf_counter()
        kept: list[Rule] = []
        skipped: list[tuple[int, str]] = []
        # Per folding (None exact, FOLD, LEET): pattern -> index, patterns, terms per pattern.
        tables: dict[str, dict[int, str] | None] = {
            "exact": None,
            "fold": FOLD,
            "leet": LEET,
        }
        pattern_index: dict[str, dict[str, int]] = {name: {} for name in tables}
        patterns: dict[str, list[str]] = {name: [] for name in tables}
        terms: dict[str, list[list[_Term]]] = {name: [] for name in tables}
        wildcards: dict[int, _Wildcard] = {}
        regexes: list[tuple[int, regex.Pattern, list[str], bool]] = []
        users: dict[str, list[int]] = {}
        symbol_index: dict[str, list[tuple[int, bool]]] = {}

        def skip(rule: Rule, reason: str) -> None:
            skipped.append((rule.id, reason))
            logger.warning("blocklist rule %s skipped: %s", rule.id, reason)

        def add_term(group: str, text: str, term: _Term) -> None:
            idx = pattern_index[group].get(text)
            if idx is None:
                idx = pattern_index[group][text] = len(patterns[group])
                patterns[group].append(text)
                terms[group].append([])
            terms[group][idx].append(term)

        def fold_term(rule: Rule, text: str) -> tuple[str, NormText]:
            group = "exact" if rule.exact else "leet" if rule.leet else "fold"
            norm = NormText(text)
            table = tables[group]
            if table is None:
                return group, norm
            return group, norm.derive(table, ascii_too=group == "leet")

        for n, rule in enumerate(rules):
            if n % _YIELD_EVERY == 0 and n:
                # Compiled (webhooks/compiled.py), this loop never hands the GIL over on
                # its own: let the threads answering calls run during a rebuild.
                time.sleep(0)
            reason = _invalid_reason(rule)
            if reason:
                skip(rule, reason)
                continue
            index = len(kept)
            if rule.kind in ("word", "allow"):
                group = "exact" if rule.exact else "leet" if rule.leet else "fold"
                cached = _TERM_CACHE.get((group, rule.term))
                if cached is not None:
                    add_term(
                        group,
                        cached[0],
                        _Term(index, cached[1], allow=rule.kind == "allow"),
                    )
                    kept.append(rule)
                    continue
                group, norm = fold_term(rule, rule.term)
                if not norm.strict:
                    # Emoji and symbol-only terms ("🍆", "卍", "$$$") are matched as they stand
                    # on the light text, where symbols are kept.
                    symbol = NormText(rule.term).light.strip()
                    if not symbol:
                        skip(rule, "nothing to match")
                        continue
                    symbol_index.setdefault(symbol, []).append(
                        (index, rule.kind == "allow")
                    )
                    kept.append(rule)
                    continue
                gaps = _term_gaps(norm)
                if len(_TERM_CACHE) >= _TERM_CACHE_MAX:
                    _TERM_CACHE.clear()
                _TERM_CACHE[(group, rule.term)] = (norm.strict, gaps)
                add_term(
                    group,
                    norm.strict,
                    _Term(index, gaps, allow=rule.kind == "allow"),
                )
            elif rule.kind == "wildcard":
                raw_pieces = [fold_term(rule, p) for p in rule.term.split("*")]
                pieces = [(g, p) for g, p in raw_pieces if p.strict]
                if not pieces:
                    skip(rule, "no letters or digits")
                    continue
                for number, (group, piece) in enumerate(pieces):
                    add_term(
                        group, piece.strict, _Term(index, _term_gaps(piece), number)
                    )
                stripped = rule.term.strip()
                wildcards[index] = _Wildcard(
                    index, len(pieces), stripped.startswith("*"), stripped.endswith("*")
                )
            elif rule.kind == "regex":
                try:
                    folded = fold_pattern(rule.term)
                    compiled = regex.compile(folded, regex.IGNORECASE)
                except (regex.error, ValueError, OverflowError, RecursionError) as exc:
                    skip(rule, f"regex does not compile: {exc}")
                    continue
                regexes.append((index, compiled, *required_literals(folded)))
            elif rule.kind == "user":
                users.setdefault(rule.term, []).append(index)
            kept.append(rule)

        names = [name for name in tables if patterns[name]]
        groups = [
            _Group(
                tables[name],
                name == "leet",
                FOLDABLE if name == "fold" else None,
                terms[name],
            )
            for name in names
        ]
        regex_always, regex_by_literal, literals = _regex_prefilter(regexes)
        automaton = _Automaton.build(
            [patterns[name] for name in names], literals, list(symbol_index)
        )
        ruleset = cls(
            rules=kept,
            _regex_always=regex_always,
            _regex_by_literal=regex_by_literal,
            skipped=skipped,
            _groups=groups,
            _wildcards=wildcards,
            _regexes=regexes,
            _users=users,
            _has_text_rules=bool(groups or regexes or symbol_index),
            _symbol_terms=list(symbol_index.values()),
            _automaton=automaton,
        )
        ruleset.build_seconds = time.perf_counter() - started
        return ruleset

    # -- checking ---------------------------------------------------------------------------------
    def _active(self, index: int, now: float) -> bool:
        expires = self.rules[index].expires_at
        return expires is None or expires > now

    def check(
        self,
        *,
        from_account: object,
        msg_body: object,
        cloud_custom_data: object,
        now: float | None = None,
        texts: list[tuple[str, str]] | None = None,
    ) -> Verdict:
        """The verdict on one message; any shape of ``msg_body`` and ``cloud_custom_data``
        is read as far as it can be (the hot path has checked the documented fields
        already), never raising. ``texts``: ``list(iter_texts(msg_body,
        cloud_custom_data))`` when the caller has it already (the hot path keeps it for
        the decision log and the recent-message store)."""
        if now is None:
            now = time.time()
        candidates: list[_Candidate] = []
        # Blocked users first: an exact dictionary lookup, before any text is normalised.
        if isinstance(from_account, str) and from_account in self._users:
            for index in self._users[from_account]:
                if self._active(index, now):
                    candidates.append(
                        _Candidate(index, "From_Account", 0, len(from_account))
                    )
        suppressors: list[_Candidate] = []
        if self._has_text_rules:
            deadline = time.perf_counter() + REGEX_BUDGET
            items = (
                list(iter_texts(msg_body, cloud_custom_data))
                if texts is None
                else texts.copy()
            )
            joinable = joinable_texts(msg_body, cloud_custom_data)
            joined = len(joinable) > 1
            if joined:
                # The plain fields one after the other, so a word split across two of them
                # is read whole; scanned with the fields, in the same search.
                items.append(("joined", "".join(text for _, text in joinable)))
            found = self._scan_texts(items, now, deadline)
            if joined:
                joined_hits, joined_allows = found.pop()
            for hits, allows in found:
                candidates.extend(hits)
                suppressors.extend(allows)
            if joined:
                starts = [0]
                for _, text in joinable:
                    starts.append(starts[-1] + len(text))
                candidates.extend(
                    _not_covered(
                        _split_joined(joined_hits, joinable, starts), candidates
                    )
                )
                suppressors.extend(
                    _not_covered(
                        _split_joined(joined_allows, joinable, starts), suppressors
                    )
                )
        if not candidates:
            if suppressors:
                return Verdict(
                    "allow", 0, "", tuple(self._hit(c, "allow") for c in suppressors)
                )
            return ALLOW
        return self._verdict(candidates, suppressors, msg_body, cloud_custom_data)

    def scan_text(self, text: str, now: float | None = None) -> list[Hit]:
        """Hits of one free text (field "text"), allow entries that suppressed something included."""
        if now is None:
            now = time.time()
        [(hits, allows)] = self._scan_texts(
            [("text", text)], now, time.perf_counter() + REGEX_BUDGET
        )
        return [self._hit(c) for c in hits] + [self._hit(c, "allow") for c in allows]

    def _hit(self, cand: _Candidate, action: str | None = None) -> Hit:
        rule = self.rules[cand.rule_index]
        return Hit(
            rule.id, rule.kind, action or rule.action, cand.field, cand.start, cand.end
        )

    def _scan_texts(
        self, items: list[tuple[str, str]], now: float, deadline: float
    ) -> list[tuple[list[_Candidate], list[_Candidate]]]:
        """For each (field path, text): (effective hits, allow matches that suppressed at
        least one hit), the text read as it stands, with HTML entities and percent-escapes
        decoded, and in the order a right-to-left override displays it (the last two only
        when the text has them).

        Every view of every text goes through the automaton in one search (see _Automaton):
        the search releases the GIL, and each release lets the server's other threads in."""
        views: list[_View] = []
        for item, (_, text) in enumerate(items):
            norm = NormText(text)
            views.append(_View(item, norm))
            decoded = decode_escapes(text)
            if decoded is not None:
                views.append(_View(item, NormText(decoded[0]), spans=decoded[1]))
            # A plain text holds no direction control (they are format characters).
            shown = None if norm.plain else display_order(text)
            if shown is not None:
                views.append(_View(item, NormText(shown), whole=True))
        if self._automaton is not None:
            self._automaton.search(views, self._groups)
        results: list[tuple[list[_Candidate], list[_Candidate]]] = [
            ([], []) for _ in items
        ]
        for view in views:
            path = items[view.item][0]
            hits, allows = self._scan_view(view, path, now, deadline)
            if view.spans is not None:
                spans = view.spans
                for cand in hits + allows:
                    cand.start, cand.end = spans[cand.start][0], spans[cand.end - 1][1]
            elif view.whole:
                # Reordered text has no simple offset map: the hit covers the whole field.
                length = len(items[view.item][1])
                for cand in hits + allows:
                    cand.start, cand.end = 0, length
            result = results[view.item]
            result[0].extend(hits)
            result[1].extend(allows)
        # A text read more than one way: the views' hits are merged (they agree).
        several = len(views) > len(items)
        return [
            (_merge_candidates(hits), _merge_candidates(allows))
            if several and (hits or allows)
            else (hits, allows)
            for hits, allows in results
        ]

    def _scan_view(
        self, view: _View, path: str, now: float, deadline: float
    ) -> tuple[list[_Candidate], list[_Candidate]]:
        """(effective hits, allow matches that suppressed at least one hit) for one view of
        a string, from what the automaton found in it.

        Allow-list suppression compares single occurrences; afterwards the overlapping or touching
        occurrences of one entry become one hit, so a flood ("哈哈哈哈..." against "哈哈") yields one
        hit and one masked run rather than thousands."""
        norm = view.norm
        raw: list[tuple[int, int, int]] = []  # (rule index, light start, light end)
        allows: list[tuple[int, int, int]] = []
        for group_number, folded, matches in view.terms:
            self._scan_terms(
                self._groups[group_number], folded, matches, now, raw, allows
            )
        for number, s, e in view.symbols:
            for index, allow in self._symbol_terms[number]:
                if self._active(index, now):
                    (allows if allow else raw).append((index, s, e))
        if self._regexes and norm.light:
            self._scan_regexes(norm, view.literals, now, raw, deadline)
        if not raw:
            return [], []
        used: list[tuple[int, int, int]] = []
        if allows:
            raw, used = _suppress(raw, allows)
        by_rule: dict[int, list[tuple[int, int]]] = {}
        for index, ls, le in raw:
            by_rule.setdefault(index, []).append((ls, le))
        hits = [
            _Candidate(index, path, *norm.light_span_to_original(ls, le))
            for index, spans in by_rule.items()
            for ls, le in _merge(spans)
        ]
        hits.sort(key=lambda c: (c.start, c.rule_index))
        used_by_rule: dict[int, list[tuple[int, int]]] = {}
        for index, ls, le in used:
            used_by_rule.setdefault(index, []).append((ls, le))
        return hits, [
            _Candidate(index, path, *norm.light_span_to_original(ls, le))
            for index, spans in used_by_rule.items()
            for ls, le in _merge(spans)
        ]

    def _scan_terms(
        self,
        group: _Group,
        norm: NormText,
        matches: list[tuple[int, int, int]],
        now: float,
        raw: list[tuple[int, int, int]],
        allows: list[tuple[int, int, int]],
    ) -> None:
        """Words, phrases, wildcard pieces and allow entries of one group, from the
        automaton's (pattern number in the group, start, end) matches on the group's view."""
        # A pathological flood (nested terms like "a", "aa", "aaa" over "aaaa...") can produce
        # hundreds of thousands of overlapping matches; then occurrences of each term are merged
        # before the allow-list check (slightly coarser exemptions) to stay within the deadline.
        flood = len(matches) > FLOOD_MATCHES
        by_pattern: dict[int, list[tuple[int, int]]] = {}
        for pat, s, e in matches:
            occurrences = by_pattern.get(pat)
            if occurrences is None:
                by_pattern[pat] = [(s, e)]
            else:
                occurrences.append((s, e))
        to_light = norm.strict_span_to_light
        # Without any separator in the text, every match is trivially aligned.
        separated = len(norm.strict) != len(norm.light)
        pieces: dict[int, dict[int, list[tuple[int, int]]]] = {}
        for pat, occurrences in by_pattern.items():
            for term in group.terms[pat]:
                index = term.rule_index
                if not self._active(index, now):
                    continue
                if term.allow:
                    for s, e in _merge(occurrences) if flood else occurrences:
                        allows.append((index, *to_light(s, e)))
                    continue
                if flood and term.piece < 0:
                    occurrences = _merge(occurrences)
                if separated:
                    aligned = [
                        (s, e)
                        for s, e in occurrences
                        if _aligned(norm, s, e, term.gaps)
                    ]
                else:
                    aligned = occurrences
                if term.piece >= 0:
                    pieces.setdefault(index, {})[term.piece] = aligned
                    continue
                for s, e in aligned:
                    raw.append((index, *to_light(s, e)))
        for index, piece_spans in pieces.items():
            for s, e in _wildcard_matches(norm, self._wildcards[index], piece_spans):
                raw.append((index, *to_light(s, e)))

    def _scan_regexes(
        self,
        norm: NormText,
        literals: set[int],
        now: float,
        raw: list[tuple[int, int, int]],
        deadline: float,
    ) -> None:
        """The regexes: those without a required literal always, the others when the
        automaton found their longest literal (``literals``, numbers of the filing
        literals) and the light text holds the others."""
        light = norm.light
        to_run = self._regex_always
        if literals:
            has_digit: bool | None = None
            candidates: list[tuple[int, regex.Pattern]] = []
            for literal in literals:
                for index, pattern, others, needs_digit in self._regex_by_literal[
                    literal
                ]:
                    if others and not all(other in light for other in others):
                        continue
                    if needs_digit:
                        if has_digit is None:
                            has_digit = _DIGIT.search(light) is not None
                        if not has_digit:
                            continue
                    candidates.append((index, pattern))
            if candidates:
                to_run = sorted([*to_run, *candidates], key=lambda item: item[0])
        for index, pattern in to_run:
            if not self._active(index, now):
                continue
            # Each search has its own time bound, and all the searches of one message share a
            # budget, so a hundred slow patterns cannot add up past the provider's deadline.
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                self.regex_timeouts += 1
                logger.warning(
                    "blocklist regex budget spent; rule %s skipped",
                    self.rules[index].id,
                )
                continue
            try:
                spans = [
                    m.span()
                    for m in pattern.finditer(
                        light, timeout=min(REGEX_TIMEOUT, remaining)
                    )
                    if m.end() > m.start()
                ]
            except TimeoutError:
                self.regex_timeouts += 1
                logger.warning(
                    "blocklist regex rule %s timed out on %s characters",
                    self.rules[index].id,
                    len(norm.original),
                )
                continue
            raw.extend((index, s, e) for s, e in spans)

    def _verdict(
        self,
        candidates: list[_Candidate],
        suppressors: list[_Candidate],
        msg_body,
        cloud_custom_data,
    ) -> Verdict:
        hits = tuple(self._hit(c) for c in candidates) + tuple(
            self._hit(c, "allow") for c in suppressors
        )
        # Strongest action wins; among equals the first hit (users come first) decides.
        best = max(candidates, key=lambda c: RANK[self.rules[c.rule_index].action])
        best_rule = self.rules[best.rule_index]
        action = best_rule.action
        if action == "forbid_code":
            assert best_rule.code is not None  # Rule's validation requires it
            return Verdict(action, best_rule.code, best_rule.info, hits)
        if action != "mask":
            return Verdict(action, ERROR_CODE[action], "", hits)
        masks: dict[str, list[tuple[int, int]]] = {}
        mask_all = False
        for cand in candidates:
            if cand.field == "From_Account":
                mask_all = True
            else:
                masks.setdefault(cand.field, []).append((cand.start, cand.end))
        new_body, new_ccd = mask_message(
            msg_body, cloud_custom_data, masks, mask_all=mask_all
        )
        return Verdict(
            "mask", 0, "", hits, msg_body=new_body, cloud_custom_data=new_ccd
        )


class _View:
    """One way of reading one text (as it stands, decoded, or in display order), and what
    the automaton found in it.

    A plain class: two or more are made per message, and a dataclass's generated
    ``__init__`` (with its default factories) cost 7% of an answer once the matcher is
    compiled (py-spy)."""

    __slots__ = ("item", "norm", "spans", "whole", "terms", "symbols", "literals")

    def __init__(
        self,
        item: int,
        norm: NormText,
        spans: list[tuple[int, int]] | None = None,
        whole: bool = False,
    ) -> None:
        self.item = item  # which of the scanned texts
        self.norm = norm
        # Decoded: the original span of each character.
        self.spans = spans
        self.whole = whole  # display order: a hit covers the whole text
        # (group number, the group's view of the text, its (pattern, start, end) matches)
        self.terms: list[tuple[int, NormText, list[tuple[int, int, int]]]] = []
        self.symbols: list[tuple[int, int, int]] = []
        self.literals: set[int] = set()


# What a pattern of the automaton is: a term of group N (N >= 0), a regex literal (searched
# on the letters-only text when it is made of letters and digits only: present in the light
# text means present there, and the letters-only text is searched anyway), or a symbol term;
# with its number in that list.
_LITERAL = -1
_SYMBOL = -2
_LETTERS_LITERAL = -3
# Between the segments of the searched text. No pattern holds it (the letters-only forms
# cannot, and a match across two segments is dropped anyway).
_SEGMENT_SEPARATOR = "\x00"


@dataclass
class _Automaton:
    """Every pattern of a rule set on one Aho-Corasick automaton (in shards of at most
    SHARD_TERMS): the terms of each folding group, matched on that group's letters-only
    view, and the regex literals and symbol terms, matched on the light text.

    A message is searched once: the views of all its texts are joined into one string,
    segments apart, and each match is handed to the view and kind of its segment.
    ahocorasick-rs releases the GIL for every search, and under a threaded server each
    release hands the GIL to another thread and waits to get it back (measured under
    granian: 4 searches a request cost 30-40% of the throughput of the same work
    without them), so one search beats one per text and kind."""

    shards: list[tuple[ahocorasick_rs.AhoCorasick, int]]
    # Per pattern: ((kind, number in its kind), ...); a string listed in several kinds is
    # one pattern.
    meanings: list[tuple[tuple[int, int], ...]]
    # Symbol terms or literals with separators: the light texts are searched too.
    light_too: bool
    letters_literals: bool  # the unfolded letters-only text is searched for literals

    @classmethod
    def build(
        cls, groups: list[list[str]], literals: list[str], symbols: list[str]
    ) -> _Automaton | None:
        index: dict[str, int] = {}
        meanings: list[list[tuple[int, int]]] = []
        listed = [
            (kind, number, text)
            for kind, strings in enumerate(groups)
            for number, text in enumerate(strings)
        ]
        listed += [
            (_LETTERS_LITERAL if _letters_only(text) else _LITERAL, number, text)
            for number, text in enumerate(literals)
        ]
        listed += [(_SYMBOL, number, text) for number, text in enumerate(symbols)]
        for n, (kind, number, text) in enumerate(listed):
            if n % (8 * _YIELD_EVERY) == 0 and n:
                time.sleep(0)  # see _YIELD_EVERY
            at = index.get(text)
            if at is None:
                at = index[text] = len(meanings)
                meanings.append([])
            meanings[at].append((kind, number))
        if not index:
            return None
        kinds = {kind for kind, _, _ in listed}
        return cls(
            _build_shards(list(index)),
            [tuple(meaning) for meaning in meanings],
            light_too=_LITERAL in kinds or _SYMBOL in kinds,
            letters_literals=_LETTERS_LITERAL in kinds,
        )

    def search(self, views: list[_View], groups: list[_Group]) -> None:
        """Fill each view's terms, symbols and literals."""
        parts: list[str] = []
        starts: list[int] = []
        # Per segment: (view, the group numbers it is searched for, the group view, searched
        # for letters-only literals (the unfolded letters), the light text)
        segments: list[tuple[_View, tuple[int, ...], NormText, bool, bool]] = []
        at = 0

        def add(
            text: str, segment: tuple[_View, tuple[int, ...], NormText, bool, bool]
        ) -> None:
            nonlocal at
            parts.append(text)
            starts.append(at)
            segments.append(segment)
            at += len(text) + 1

        for view in views:
            norm = view.norm
            if norm.strict:
                folded: list[tuple[NormText, list[int]]] = []
                for number, group in enumerate(groups):
                    derived = (
                        norm
                        if group.table is None
                        else norm.derive(
                            group.table,
                            ascii_too=group.ascii_too,
                            trigger=group.trigger,
                        )
                    )
                    if not derived.strict:
                        continue
                    for seen, numbers in folded:
                        if seen is derived:  # the same text: searched once for both
                            numbers.append(number)
                            break
                    else:
                        folded.append((derived, [number]))
                if self.letters_literals and not any(d is norm for d, _ in folded):
                    folded.append((norm, []))
                for derived, numbers in folded:
                    add(
                        derived.strict,
                        (view, tuple(numbers), derived, derived is norm, False),
                    )
            if self.light_too and norm.light:
                add(norm.light, (view, (), norm, False, True))
        if not parts:
            return
        text = _SEGMENT_SEPARATOR.join(parts)
        found: list[tuple[int, int, int]] = []
        for automaton, offset in self.shards:
            matches = automaton.find_matches_as_indexes(text, overlapping=True)
            if matches:
                if offset:
                    found.extend((pat + offset, s, e) for pat, s, e in matches)
                else:
                    found.extend(matches)
        if not found:
            return
        by_segment: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
        last = len(starts) - 1
        for pat, s, e in found:
            k = bisect.bisect_right(starts, s) - 1
            start = starts[k]
            if k < last and e >= starts[k + 1]:
                continue  # across a separator
            view, searched_for, _, letters, light = segments[k]
            for kind, number in self.meanings[pat]:
                if kind >= 0:
                    if kind in searched_for:
                        by_segment.setdefault((k, kind), []).append(
                            (number, s - start, e - start)
                        )
                elif kind == _LETTERS_LITERAL:
                    if letters:
                        view.literals.add(number)
                elif light:
                    if kind == _LITERAL:
                        view.literals.add(number)
                    else:
                        view.symbols.append((number, s - start, e - start))
        for (k, kind), matches in sorted(by_segment.items()):
            view, _, derived, _, _ = segments[k]
            view.terms.append((kind, derived, matches))


def _letters_only(text: str) -> bool:
    return all(unicodedata.category(ch)[0] in "LNM" for ch in text)


def _split_joined(
    cands: list[_Candidate], joinable: list[tuple[str, str]], starts: list[int]
) -> list[list[_Candidate]]:
    """Hits of the joined text that cross from one plain field into the next (a word split
    over two elements, or over Text and CloudCustomData), each as its pieces on every field
    it touches. Hits inside a single field were found by the per-field scan and are left out."""
    out = []
    for cand in cands:
        first = bisect.bisect_right(starts, cand.start) - 1
        last = bisect.bisect_left(starts, cand.end) - 1
        if first >= last:
            continue  # inside one field
        pieces = []
        for k in range(first, last + 1):
            a, b = max(cand.start, starts[k]), min(cand.end, starts[k + 1])
            if b > a:
                pieces.append(
                    _Candidate(
                        cand.rule_index, joinable[k][0], a - starts[k], b - starts[k]
                    )
                )
        out.append(pieces)
    return out


def _build_shards(patterns: list[str]) -> list[tuple[ahocorasick_rs.AhoCorasick, int]]:
    shards = []
    for offset in range(0, len(patterns), SHARD_TERMS):
        if offset:
            time.sleep(0)  # let the answering threads run between two builds
        shards.append(
            (
                ahocorasick_rs.AhoCorasick(
                    patterns[offset : offset + SHARD_TERMS],
                    matchkind=ahocorasick_rs.MatchKind.Standard,
                    store_patterns=False,
                ),
                offset,
            )
        )
    return shards


def _not_covered(
    joined: list[list[_Candidate]], found: list[_Candidate]
) -> list[_Candidate]:
    """The pieces of the joined-text hits that the per-field scan did not already explain
    (two whole words in two fields touch in the joined text; that is no split word)."""
    out: list[_Candidate] = []
    for pieces in joined:
        covered = all(
            any(
                f.rule_index == p.rule_index
                and f.field == p.field
                and f.start <= p.start
                and p.end <= f.end
                for f in found
            )
            for p in pieces
        )
        if not covered:
            out.extend(pieces)
    return out


def _merge_candidates(cands: list[_Candidate]) -> list[_Candidate]:
    """One candidate per entry and run of overlapping spans (views of one text agree)."""
    by_rule: dict[int, list[tuple[int, int]]] = {}
    field_of: dict[int, str] = {}
    for cand in cands:
        by_rule.setdefault(cand.rule_index, []).append((cand.start, cand.end))
        field_of[cand.rule_index] = cand.field
    merged = [
        _Candidate(index, field_of[index], s, e)
        for index, spans in by_rule.items()
        for s, e in _merge(spans)
    ]
    merged.sort(key=lambda c: (c.start, c.rule_index))
    return merged


def _regex_prefilter(
    regexes: list[tuple[int, regex.Pattern, list[str], bool]],
) -> tuple[
    list[tuple[int, regex.Pattern]],
    list[list[_Prefiltered]],
    list[str],
]:
    """(regexes that always run, regexes filed under their longest literal, each filing
    literal by its number).

    Only the longest literal of a regex goes on the automaton; the shorter ones it also
    needs are looked for in the text once the longest is found. Short literals (two
    letters) occur in most messages, and every match the automaton reports costs a
    step in Python."""
    always: list[tuple[int, regex.Pattern]] = []
    by_literal: list[list[_Prefiltered]] = []
    literal_index: dict[str, int] = {}
    for index, compiled, literals, needs_digit in regexes:
        if not literals:
            always.append((index, compiled))
            continue
        longest, *others = literals
        if longest not in literal_index:
            literal_index[longest] = len(by_literal)
            by_literal.append([])
        by_literal[literal_index[longest]].append(
            (index, compiled, tuple(others), needs_digit)
        )
    return always, by_literal, list(literal_index)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of overlapping or touching spans, in order."""
    if len(spans) < 2:
        return spans
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _suppress(
    raw: list[tuple[int, int, int]], allows: list[tuple[int, int, int]]
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """Drop the hits (rule index, start, end) an allow match covers; return (kept hits, the allow
    matches that covered one).

    Sorted by start with a running "furthest end", so a flood of hits and allow matches in one long
    message ("哈哈哈..." against both "哈哈" and "哈哈哈") stays O((hits + allows) log allows)."""
    ordered = sorted(allows, key=lambda a: a[1])
    starts = [a[1] for a in ordered]
    reach: list[
        int
    ] = []  # index in ordered of the furthest-reaching allow among the first i+1
    for i, allow in enumerate(ordered):
        reach.append(i if not reach or allow[2] > ordered[reach[-1]][2] else reach[-1])
    kept: list[tuple[int, int, int]] = []
    used: set[int] = set()
    for hit in raw:
        i = bisect.bisect_right(starts, hit[1]) - 1
        if i >= 0 and ordered[reach[i]][2] >= hit[2]:
            used.add(reach[i])
        else:
            kept.append(hit)
    return kept, [ordered[i] for i in sorted(used)]


_NO_GAPS: frozenset[int] = frozenset()


def _term_gaps(norm: NormText) -> frozenset[int]:
    """Where separators split a listed term (the spaces of a phrase)."""
    if len(norm.strict) == len(norm.light):
        return _NO_GAPS
    return frozenset(norm.gaps(0, len(norm.strict)))


def _invalid_reason(rule: Rule) -> str | None:
    if rule.kind not in KINDS:
        return f"unknown kind {rule.kind!r}"
    if rule.kind != "allow" and rule.action not in ACTIONS:
        return f"unknown action {rule.action!r}"
    if not isinstance(rule.term, str) or not rule.term:
        return "empty term"
    if (
        rule.kind != "allow"
        and rule.action == "forbid_code"
        and (
            not isinstance(rule.code, int)
            or not FORBID_CODE_MIN <= rule.code <= FORBID_CODE_MAX
        )
    ):
        return f"forbid_code needs a code in {FORBID_CODE_MIN}..{FORBID_CODE_MAX}"
    return None


def _aligned(norm: NormText, s: int, e: int, term_gaps: frozenset[int]) -> bool:
    """A match split by separators the term does not have must sit on word boundaries (see module doc)."""
    if not norm.has_gap_inside(s, e):
        return True
    if norm.gaps(s, e) <= term_gaps:
        return True
    return norm.boundary_before(s) and norm.boundary_before(e)


def _wildcard_matches(
    norm: NormText, wildcard: _Wildcard, occurrences: dict[int, list[tuple[int, int]]]
) -> list[tuple[int, int]]:
    """Spans (strict coordinates) where the wildcard's pieces occur in order, as the module doc says.

    Linear in the number of occurrences: the next piece is found by bisection, and an occurrence
    inside a span already found is skipped (a "*cat*" flood stretches to its word only once)."""
    if len(occurrences) < wildcard.pieces:
        return []
    found: list[tuple[int, int]] = []
    last = wildcard.pieces - 1
    ordered = [sorted(occurrences[p]) for p in range(wildcard.pieces)]
    starts = [[s for s, _ in piece] for piece in ordered]
    covered = -1
    for s0, e0 in ordered[0]:
        if s0 < covered:
            continue
        if not wildcard.lead and not norm.boundary_before(s0):
            continue
        end = e0
        for p in range(1, wildcard.pieces):
            chosen = None
            for k in range(bisect.bisect_left(starts[p], end), len(ordered[p])):
                s, e = ordered[p][k]
                if s - end > MAX_WILDCARD_GAP or norm.has_gap_inside(end, s):
                    break
                if p == last and not wildcard.trail and not norm.boundary_before(e):
                    continue
                chosen = e
                break
            if chosen is None:
                break
            end = chosen
        else:
            if last == 0 and not wildcard.trail and not norm.boundary_before(end):
                continue
            start = s0
            # "*" at an end stretches the hit over the rest of the word, so a mask hides it all.
            if wildcard.lead:
                while not norm.boundary_before(start):
                    start -= 1
            if wildcard.trail:
                while not norm.boundary_before(end):
                    end += 1
            found.append((start, end))
            covered = end
    return found
