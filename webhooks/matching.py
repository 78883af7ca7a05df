"""Compiled blocklist matcher for the before-send webhook.

Pure Python (no Django import) so the webhook view, the "try a message" page, the ``blocklist test``
command and the benchmarks can all share one implementation. A :class:`RuleSet` is compiled once per
blocklist change and then only read, so one instance can serve every request (and thread) of a process.

Matching model (documented for moderators; the webhook helper links here):

* Every text-carrying element is inspected: ``TIMTextElem.Text``; ``TIMCustomElem`` ``Data``, ``Desc``,
  ``Ext``; ``TIMFaceElem.Data``; ``TIMLocationElem.Desc``; ``TIMRelayElem`` ``Title`` /
  ``CompatibleText`` / ``AbstractList``; and ``CloudCustomData``. A string that is a JSON object or array
  (``send_custom_msg`` wraps ``{"BusinessId": ..., "Data": ...}`` into ``Data``; ``ExtensionInfo`` arrives as
  ``CloudCustomData``) is parsed and each string value inside it is inspected on its own, so a hit is reported
  as e.g. ``MsgBody[0].Data.Data`` and masking re-serialises valid JSON. Keys are structure, not text, and
  are not inspected. Unreadable parts of a malformed body are skipped, never raised on.
* Normalisation sees through simple evasion: the text is NFKC-normalised (full-width and half-width
  forms, ligatures, circled and mathematical letters; a letter and its combining marks compose first)
  and case-folded; zero-width and other format characters (ZWSP, ZWJ, word joiner, BOM, soft hyphen,
  bidi controls, tags), variation selectors, Hangul fillers and stacked diacritics ("zalgo") are
  removed. Accents that compose into a letter are kept: "bád" is not "bad". Hits and masks are mapped
  back to the original characters (a full-width or zero-width-split word is masked whole).
* Words, phrases and wildcard pieces are compared on the *letters, digits and marks only* form of that
  text: spaces, punctuation and symbols are ignored, both in the text and in the listed term ("bad word"
  matches "b.a.d  w-o r d" and "badword"). A word made only of emoji or symbols ("🍆", "卍", "$$$")
  is matched as it stands on the normalised text instead, where symbols are kept.
* Words and phrases match as substrings (Chinese, Japanese, Korean and Thai have no word boundaries, and
  this catches compounds and inflections). Allow-list entries exist to exempt the innocent words that
  contain a listed one ("class" against "ass"). So that ignoring separators does not glue unrelated
  words together ("was sent" would contain "ass"), a match whose letters are split by separators the
  listed term does not have must start and end on word boundaries: "a s s" and "you a.s.s!" match, "was
  sent" does not. Each character of the Han, Hiragana, Katakana, Hangul, Thai, Lao, Khmer and Myanmar
  scripts is a word boundary on its own.
* Wildcards follow Discord AutoMod's keyword strategies: ``cat`` matches the whole word only, ``cat*``
  words starting with cat, ``*cat`` words ending with it, ``*cat*`` anywhere. ``*`` may also stand inside
  a pattern (``f*ck``, ``buy * followers``), an extension of Discord's syntax: there it matches a run of
  at most 64 letters containing no separator, while separators at its two ends are ignored (so ``f*ck``
  also catches "f u ck" and ``buy * followers`` "buy cheap followers"). The hit, and so the mask, covers
  the whole matched word(s).
* Regular expressions (the ``regex`` package, case-insensitive) run on the NFKC / case-folded text with
  invisible characters removed but spacing and punctuation kept, so ``\\s`` and ``\\b`` work; the
  pattern's own non-ASCII literals are normalised the same way (``加微信：\\d+`` also catches a
  half-width colon). Each search has a time bound (:data:`REGEX_TIMEOUT`) and the searches of one message share a budget
  (:data:`REGEX_BUDGET`); a search that runs out of time counts as no match and is logged and counted
  in :attr:`RuleSet.regex_timeouts`. A regex only runs when the text contains a literal every match of
  it needs (found with a second automaton), so a hundred regexes cost little on ordinary messages.
  :func:`compile_regex_or_error` is the save-time check (compiles, no nested or ambiguous repeats, does
  not match the empty text).
* User entries compare ``From_Account`` exactly, before any text is scanned. A user entry with action
  ``mask`` masks every inspected string of that user's messages.
* Allow entries are phrases matched like words (without the word-boundary condition); an allow match
  whose span covers a word, wildcard or regex hit in the same string suppresses that hit.
* Overlapping or touching occurrences of one entry in one string are reported as one hit (a flood of
  "哈哈哈..." against "哈哈" is one hit, and masks the whole run).
* Precedence: forbid / forbid_code (user entries first among them) before discard before mask. Expired
  entries (``expires_at <= now``) never match. The verdict lists every hit, in text order, then the
  allow entries that suppressed something (with action ``"allow"``).

Aho-Corasick library: ahocorasick-rs, chosen by measurement (bench/matcher.py): at 100,000 terms, half
of them Chinese, it scans a 200-character message in about 4 µs against about 250 µs for
pyahocorasick (whose transitions scan a list per character, and a CJK list has thousands of first
characters), and builds no slower (0.35-1.3 s against 0.5-2.7 s on a busy 2-core machine). It cannot be
pickled, so every process compiles its own RuleSet. MatchKind "standard" with overlapping
search, the only mode that reports every match ("ass" inside "class", both listed); the library picks
its automaton (a DFA for small lists, a contiguous NFA for large ones, whose build is ten times faster
than a DFA's at 100,000 terms).
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import re
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import ahocorasick_rs
import regex

# The stdlib's regex parser, used only to find a literal every match must contain (a prefilter). A
# future Python may move it; the prefilter is then off and every regex runs.
try:
    from re import _constants as _sre_constants  # type: ignore[attr-defined]
    from re import _parser as _sre_parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _sre_parser = None

logger = logging.getLogger(__name__)

KINDS = ("word", "wildcard", "regex", "user", "allow")
ACTIONS = ("forbid", "forbid_code", "discard", "mask", "flag")
FORBID_CODE_MIN = 10100
FORBID_CODE_MAX = 10200
# Time bound for one regex search over one string. The provider gives the webhook two seconds for the
# whole answer; 100 regexes over a few strings must stay far below that even when several misbehave.
REGEX_TIMEOUT = 0.005
# Time all the regex searches of one message may take together (seconds).
REGEX_BUDGET = 0.1
MAX_REGEX_LENGTH = 500
# How far a "*" inside a wildcard pattern may stretch (normalised characters).
MAX_WILDCARD_GAP = 64
# More overlapping automaton matches than this in one string is a flood (see RuleSet._scan_terms).
FLOOD_MATCHES = 20_000
# JSON strings nested in JSON strings are unwrapped this many levels deep.
MAX_JSON_DEPTH = 3

_RANK = {"forbid": 3, "forbid_code": 3, "discard": 2, "mask": 1, "flag": 0}
_ERROR_CODE = {"forbid": 1, "discard": 2, "mask": 0, "flag": 0}

# MsgContent keys that carry text, per element type (docs/providers.md, "Message elements").
TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "TIMTextElem": ("Text",),
    "TIMCustomElem": ("Data", "Desc", "Ext"),
    "TIMFaceElem": ("Data",),
    "TIMLocationElem": ("Desc",),
    "TIMRelayElem": ("Title", "CompatibleText", "AbstractList"),
}


@dataclass(frozen=True)
class Rule:
    id: int
    kind: str  # "word" | "wildcard" | "regex" | "user" | "allow"
    term: str
    action: str  # "forbid" | "forbid_code" | "discard" | "mask"
    code: int | None = None  # 10100..10200 for forbid_code
    info: str = ""
    expires_at: float | None = None  # Unix seconds


@dataclass(frozen=True)
class Hit:
    rule_id: int
    kind: str
    # The rule's action, or "allow" for an allow entry that suppressed a hit.
    action: str
    # "MsgBody[0].Text", "MsgBody[1].Data.Data", "CloudCustomData", "From_Account", ...
    field: str
    # Character offsets in the original string of that field; for a value inside JSON, in the decoded
    # value (what a client shows), not in the escaped JSON text.
    start: int
    end: int


@dataclass(frozen=True)
class Verdict:
    action: str  # "allow" | "forbid" | "forbid_code" | "discard" | "mask"
    error_code: int
    error_info: str
    hits: tuple[Hit, ...]
    msg_body: list | None = None
    cloud_custom_data: str | None = None

    def response(self) -> dict:
        """The webhook answer in the documented format (docs/providers.md,
        "Before-send webhook")."""
        body: dict = {
            "ActionStatus": "OK",
            "ErrorInfo": self.error_info,
            "ErrorCode": self.error_code,
        }
        if self.msg_body is not None:
            body["MsgBody"] = self.msg_body
        if self.cloud_custom_data is not None:
            body["CloudCustomData"] = self.cloud_custom_data
        return body


ALLOW = Verdict(action="allow", error_code=0, error_info="", hits=())

# --------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------


def _class_body(predicate) -> str:
    """A stdlib ``re`` character-class body for the code points (BMP, SMP and the tag/variation-selector
    plane) whose category satisfies predicate. The stdlib engine tests a short class a few times faster
    than the ``regex`` package's property lookup, and this runs on every string (built once, ~30 ms)."""
    ranges: list[tuple[int, int]] = []
    for cp in itertools.chain(range(0x20000), range(0xE0000, 0xE1000)):
        if predicate(unicodedata.category(chr(cp))):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


# Removed before matching: format characters (ZWSP/ZWNJ/ZWJ, word joiner, BOM, soft hyphen, bidi
# controls, tag characters), the combining grapheme joiner, Hangul fillers (letters that render as
# nothing), variation selectors and the combining-diacritic blocks used for "zalgo" text. Script-essential
# marks (Thai, Devanagari, Arabic harakat, ...) are kept.
_INVISIBLE = re.compile(
    "["
    + _class_body(lambda cat: cat == "Cf")
    + "\u034f\u115f\u1160\u3164\uffa0\u17b4\u17b5\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff"
    "\u20d0-\u20ff\ufe20-\ufe2f\ufe00-\ufe0f\U000e0100-\U000e01ef]"
)
# Separators: anything but letters, digits and marks.
_NON_WORD = regex.compile(r"[^\p{L}\p{N}\p{M}]+")
_NON_WORD_SPLIT = regex.compile(r"([^\p{L}\p{N}\p{M}]+)")
_ASCII_NON_WORD = {c: None for c in range(128) if not chr(c).isalnum()}
# What the slow path folds piece by piece: (1) a run of combining marks or composing characters
# (NFKC_QC=Maybe: U+0301, U+3099, Hangul vowel jamo, ...; half-width sound marks U+FF9E/U+FF9F, which
# NFKC turns into U+3099/U+309A), folded together with the character before it; or a single character
# that NFKC changes, or an invisible one. Everything else is only case-folded. (A leading ".?" in the
# first branch would say the same but makes the scan ten times slower.)
_UNSAFE = regex.compile(
    "([\\p{NFKC_QC=M}\\p{M}\uff9e\uff9f]+)"
    "|[\\p{NFKC_QC=N}\\p{Cf}\u115f\u1160\u3164\uffa0\u17b4\u17b5]"
)
# Scripts written without spaces between words: each of their characters is a word boundary.
_NO_SPACE_SCRIPT = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\u30fc]"
)
_cluster_cache: dict[str, str] = {}
_CLUSTER_CACHE_MAX = 50_000


def _fold_cluster(cluster: str) -> str:
    out = _cluster_cache.get(cluster)
    if out is None:
        out = _INVISIBLE.sub("", unicodedata.normalize("NFKC", cluster).casefold())
        if len(cluster) > 8:  # zalgo runs and the like: not worth keeping in memory
            return out
        if len(_cluster_cache) >= _CLUSTER_CACHE_MAX:
            _cluster_cache.clear()
        _cluster_cache[cluster] = out
    return out


class NormText:
    """A string in two normalised forms, with maps back to the original characters.

    ``light``: NFKC, case-folded, invisible characters removed (what regexes see).
    ``strict``: only the letters, digits and marks of ``light`` (what words and wildcards see).
    """

    __slots__ = ("original", "light", "strict", "_lstart", "_lend", "_runs")

    def __init__(self, text: str) -> None:
        self.original = text
        self._lstart: list[int] | None = None
        self._lend: list[int] | None = None
        if text.isascii():
            self.light = light = text.lower()
            self.strict = light.translate(_ASCII_NON_WORD)
        else:
            cf = text.casefold()
            if (
                len(cf) == len(text)
                and unicodedata.is_normalized("NFKC", text)
                and not _INVISIBLE.search(text)
            ):
                # Fast path (most CJK text): one light character per original character.
                self.light = cf
            else:
                self._fold_slowly(text)
            light = self.light
            self.strict = _NON_WORD.sub("", light)
        # Run tables (where separators split the strict text) are built on first use: most strings
        # have no hit and never need them.
        self._runs: tuple[list[int], list[int]] | None = (
            ([0], [0]) if len(self.strict) == len(light) else None
        )

    def _fold_slowly(self, text: str) -> None:
        """Fold only the pieces that need it (a character that NFKC changes, a base with its combining
        marks, invisible characters); everything between is copied in bulk. Keeps a map from each light
        character to the original characters it came from."""
        pieces: list[str] = []
        lstart: list[int] = []
        lend: list[int] = []
        pos = 0

        def copy_plain(segment: str, offset: int) -> None:
            folded = segment.casefold()
            if len(folded) == len(segment):
                pieces.append(folded)
                lstart.extend(range(offset, offset + len(segment)))
                lend.extend(range(offset + 1, offset + len(segment) + 1))
                return
            # "ß" -> "ss": both light characters map to the one original character.
            for k, ch in enumerate(segment):
                for out in ch.casefold():
                    pieces.append(out)
                    lstart.append(offset + k)
                    lend.append(offset + k + 1)

        # The last folded unit, which a following run of combining marks may extend.
        unit_start = unit_end = -1
        for m in _UNSAFE.finditer(text):
            a, b = m.span()
            if m.lastindex == 1 and a > 0:
                # A run of combining marks is folded with the character before it.
                if a > pos:
                    if a - 1 > pos:
                        copy_plain(text[pos : a - 1], pos)
                    a -= 1
                elif unit_end == a:
                    # Right after a folded unit ("Ａ" + U+0301): fold the two together again.
                    produced = len(pieces.pop())
                    if produced:
                        del lstart[-produced:]
                        del lend[-produced:]
                    a = unit_start
            elif a > pos:
                copy_plain(text[pos:a], pos)
            out = _fold_cluster(text[a:b])
            pieces.append(out)
            lstart.extend([a] * len(out))
            lend.extend([b] * len(out))
            unit_start, unit_end = a, b
            pos = b
        if pos < len(text):
            copy_plain(text[pos:], pos)
        self.light = "".join(pieces)
        self._lstart = lstart
        self._lend = lend

    def _run_tables(self) -> tuple[list[int], list[int]]:
        """(strict offset, light offset) of each run of letters between separators."""
        if self._runs is None:
            parts = _NON_WORD_SPLIT.split(self.light)
            words = parts[0::2]
            run_strict = [0, *itertools.accumulate(map(len, words[:-1]))]
            run_light = [0, *itertools.accumulate(map(len, parts[:-1]))][0::2]
            self._runs = (run_strict, run_light)
        return self._runs

    # -- coordinates ------------------------------------------------------------------------------
    def strict_to_light(self, k: int) -> int:
        run_strict, run_light = self._runs or self._run_tables()
        i = bisect.bisect_right(run_strict, k) - 1
        return run_light[i] + (k - run_strict[i])

    def light_span_to_original(self, ls: int, le: int) -> tuple[int, int]:
        if self._lstart is None or self._lend is None:
            return ls, le
        if le <= ls:
            return self._lstart[ls], self._lstart[ls]
        return self._lstart[ls], self._lend[le - 1]

    def strict_span_to_light(self, s: int, e: int) -> tuple[int, int]:
        return self.strict_to_light(s), self.strict_to_light(e - 1) + 1

    def strict_span_to_original(self, s: int, e: int) -> tuple[int, int]:
        return self.light_span_to_original(
            self.strict_to_light(s), self.strict_to_light(e - 1) + 1
        )

    # -- word structure (strict coordinates) -------------------------------------------------------
    def separated_before(self, k: int) -> bool:
        """True when a space, punctuation or symbol stands between strict characters k-1 and k."""
        if k <= 0 or k >= len(self.strict):
            return True
        run_strict = (self._runs or self._run_tables())[0]
        i = bisect.bisect_left(run_strict, k)
        return i < len(run_strict) and run_strict[i] == k

    def boundary_before(self, k: int) -> bool:
        """Word boundary: a separator, either end, or a character of a script without spaces."""
        if self.separated_before(k):
            return True
        return _NO_SPACE_SCRIPT.search(self.strict, k - 1, k + 1) is not None

    def gaps(self, s: int, e: int) -> set[int]:
        """Offsets (relative to s) inside (s, e) where separators split the strict text."""
        run_strict = (self._runs or self._run_tables())[0]
        i = bisect.bisect_right(run_strict, s)
        j = bisect.bisect_left(run_strict, e, i)
        return {k - s for k in run_strict[i:j]}

    def has_gap_inside(self, s: int, e: int) -> bool:
        """True when a separator stands strictly inside (s, e), i.e. before one of s+1 .. e-1."""
        run_strict = (self._runs or self._run_tables())[0]
        i = bisect.bisect_right(run_strict, s)
        return i < len(run_strict) and run_strict[i] < e


def normalise(text: str) -> str:
    """The letters-and-digits form words are compared on (useful to detect duplicate entries)."""
    return NormText(text).strict


# --------------------------------------------------------------------------------------------------
# Regex safety
# --------------------------------------------------------------------------------------------------


def fold_pattern(pattern: str) -> str:
    """The pattern with its non-ASCII literals normalised like the text it runs on.

    Regexes see NFKC / case-folded text, where a full-width "：" has become ":"; a moderator who types
    ``加微信：\\d+`` means both colons. Regex syntax is ASCII, so every non-ASCII character of a pattern
    is a literal: each one NFKC changes into a single character is replaced by that character, escaped
    (a full-width "（" must stay a literal, not open a group); invisible ones are dropped."""
    if pattern.isascii():
        return pattern
    out: list[str] = []
    escaped = False
    for ch in pattern:
        if ch.isascii():
            out.append(ch)
            escaped = not escaped and ch == "\\"
            continue
        folded = _fold_cluster(ch)
        if folded == ch or len(folded) > 1:
            out.append(ch)
        else:
            if escaped:  # "\\：" was already a literal; escape what it becomes instead
                out.pop()
            if folded:
                out.append(regex.escape(folded))
        escaped = False
    return "".join(out)


def compile_regex_or_error(pattern: str) -> str | None:
    """Save-time check of a regex entry: None when it is acceptable, else a message for the moderator."""
    if not isinstance(pattern, str) or not pattern.strip():
        return "Enter a regular expression."
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"A regular expression may have at most {MAX_REGEX_LENGTH} characters."
    try:
        compiled = regex.compile(fold_pattern(pattern), regex.IGNORECASE)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        return f"Not a valid regular expression: {exc}."
    problem = _catastrophic_reason(pattern)
    if problem:
        return problem
    if compiled.search("", timeout=REGEX_TIMEOUT) is not None:
        return "This regular expression matches an empty text, so it would match every message."
    return None


@dataclass
class _Group:
    """What the catastrophic-pattern scan knows about one open group of a regex."""

    contains_repeat: bool = False
    first_atoms: list[str] = field(
        default_factory=list
    )  # first atom of each alternative
    at_branch_start: bool = True
    has_alternation: bool = False
    ambiguous: bool = False  # two alternatives may start with the same thing

    def atom(self, atom: str) -> None:
        if self.at_branch_start:
            self.at_branch_start = False
            if atom in self.first_atoms:
                self.ambiguous = True
            self.first_atoms.append(atom)


_NESTED_REPEAT = (
    "This regular expression repeats a group that itself contains a repeat (like (a+)+); such "
    "patterns can take exponential time. Use a single quantifier or a character class instead."
)
_AMBIGUOUS_REPEAT = (
    "This regular expression repeats alternatives that can match the same text (like (a|aa)+); "
    "such patterns can take exponential time. Make the alternatives start differently or use a "
    "character class."
)


def _catastrophic_reason(pattern: str) -> str | None:
    """Refuse the shapes that make backtracking explode: a repeated group that itself contains a repeat
    (``(a+)+``, ``(\\w*\\s?)*``, ``(.*x){20}``) and a repeated alternation whose branches can start alike
    (``(a|aa)+``, ``(\\w|\\d)*``). Conservative by design: the moderator can rewrite with a single
    quantifier or a character class, and the per-search time bound remains the backstop."""
    stack = [_Group()]
    closed: _Group | None = (
        None  # the group that just closed (a quantifier may follow it)
    )
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        quantifier = _quantifier_at(pattern, i)
        if quantifier is not None:
            length, repeats = quantifier
            if repeats:
                if closed is not None and closed.contains_repeat:
                    return _NESTED_REPEAT
                if closed is not None and closed.has_alternation and closed.ambiguous:
                    return _AMBIGUOUS_REPEAT
                stack[-1].contains_repeat = True
            closed = None
            i += length
            continue
        closed = None
        if c == "\\":
            escape = pattern[i : i + 2]
            # All letter escapes (\\d, \\w, \\p{..}) count as one kind of atom: they may overlap.
            stack[-1].atom("\\" if escape[1:2].isalpha() else escape)
            i += 2
            if escape[1:2] in ("p", "P", "N") and i < n and pattern[i] == "{":
                close = pattern.find("}", i)
                i = n if close < 0 else close + 1
        elif c == "[":
            stack[-1].atom("[")
            i = _class_end(pattern, i)
        elif c == "(":
            stack[-1].atom("(")
            stack.append(_Group())
            i = _group_body_start(pattern, i + 1)
        elif c == ")":
            if len(stack) > 1:
                closed = stack.pop()
                if closed.contains_repeat:
                    stack[-1].contains_repeat = True
            i += 1
        elif c == "|":
            stack[-1].has_alternation = True
            stack[-1].at_branch_start = True
            i += 1
        else:
            stack[-1].atom(c.casefold())
            i += 1
    return None


def _class_end(pattern: str, i: int) -> int:
    """Index just after the character class that starts at pattern[i] == "["."""
    n = len(pattern)
    j = i + 1
    if j < n and pattern[j] == "^":
        j += 1
    if j < n and pattern[j] == "]":
        j += 1
    depth = 1
    while j < n and depth:
        if pattern[j] == "\\":
            j += 2
            continue
        if pattern[j] == "[":
            depth += 1
        elif pattern[j] == "]":
            depth -= 1
        j += 1
    return j


def _group_body_start(pattern: str, i: int) -> int:
    """Skip the flag syntax after "(": (?:  (?P<name>  (?<name>  (?'name'  (?=  (?!  (?<=  (?<!  (?>
    (?i)  (?i:  (?P=name)."""
    n = len(pattern)
    if i >= n or pattern[i] != "?":
        return i
    j = i + 1
    if pattern[j : j + 2] in ("<=", "<!"):
        return j + 2
    if pattern[j : j + 2] == "P=":
        close = pattern.find(")", j)
        return n if close < 0 else close
    if j < n and pattern[j] in "P<'":
        close = pattern.find("'" if pattern[j] == "'" else ">", j + 2)
        return n if close < 0 else close + 1
    while j < n and pattern[j] not in ":)":
        if pattern[j] in "=!>":
            return j + 1
        j += 1
    return j + 1 if j < n and pattern[j] == ":" else j


def _quantifier_at(pattern: str, i: int) -> tuple[int, bool] | None:
    """(length, repeats more than once) when a quantifier starts at i."""
    c = pattern[i]
    if c in "*+":
        j = i + 1
        if j < len(pattern) and pattern[j] in "?+":
            j += 1
        return j - i, True
    if c == "?":
        j = i + 1
        if j < len(pattern) and pattern[j] in "?+":
            j += 1
        return j - i, False
    if c == "{":
        m = regex.match(r"\{(\d*)(,?)(\d*)\}[?+]?", pattern[i:])
        if not m or not (m.group(1) or m.group(3)):
            return None
        low = int(m.group(1) or 0)
        high = (int(m.group(3)) if m.group(3) else None) if m.group(2) else low
        return m.end(), high is None or high > 1
    return None


# Syntax the stdlib would read differently from the regex package (fuzzy "{e<=1}", named lists "\\L<x>",
# version flags): such patterns get no prefilter.
_REGEX_ONLY_SYNTAX = regex.compile(r"\{(?!\d*,?\d*\})|\\L<|\(\?V|\(\?\||\(\?\(")


def required_literal(pattern: str) -> str | None:
    """The longest literal (case-folded) that every match of pattern must contain, or None.

    Running 100 regexes over every string costs far more than the whole Aho-Corasick scan; most
    moderator patterns contain a fixed word ("followers", "wx", "-"), and a substring test on the
    case-folded text rules a regex out in well under a microsecond. Only patterns the stdlib parser
    understands get a prefilter; others always run.
    """
    if _sre_parser is None or _REGEX_ONLY_SYNTAX.search(pattern):
        return None
    try:
        tree = _sre_parser.parse(pattern)
    except (
        Exception
    ):  # regex-only syntax (\\p{Han}, ...) or anything the stdlib refuses
        return None
    c = _sre_constants
    repeats = (
        c.MAX_REPEAT,
        c.MIN_REPEAT,
        getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT),
    )
    best = ""

    def walk(items) -> None:
        nonlocal best
        run: list[str] = []
        for op, av in items:
            if op is c.LITERAL:
                run.append(chr(av))
                continue
            if len(run) > len(best):
                best = "".join(run)
            run = []
            if op is c.SUBPATTERN:
                walk(av[-1])
            elif op in repeats and av[0] >= 1:
                walk(av[2])
            elif op is getattr(c, "ATOMIC_GROUP", None):
                walk(av)
        if len(run) > len(best):
            best = "".join(run)

    walk(tree)
    folded = best.casefold()
    if not best or len(folded) != len(best):
        return None
    return folded


# --------------------------------------------------------------------------------------------------
# Message structure
# --------------------------------------------------------------------------------------------------


def _parse_container(value: str):
    """The parsed JSON when value is a JSON object or array, else None.

    Only strict JSON that survives a round trip counts: NaN / Infinity, numbers that overflow to
    infinity and duplicate keys (which would hide a value from the scan and vanish when masking
    re-serialises) make the string plain text, scanned as it stands."""
    stripped = value.lstrip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        parsed = json.loads(
            value,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict | list) else None


def _refuse_constant(name: str):
    raise ValueError(name)


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(text)
    return number


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _iter_value(value, path: str, depth: int) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        parsed = _parse_container(value) if depth < MAX_JSON_DEPTH else None
        if parsed is None:
            if value:
                yield path, value
        else:
            yield from _iter_value(parsed, path, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _iter_value(item, f"{path}.{key}", depth)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _iter_value(item, f"{path}[{index}]", depth)


def iter_texts(msg_body, cloud_custom_data) -> Iterator[tuple[str, str]]:
    """(field path, text) for every inspected string of a message; skips what cannot be read."""
    if isinstance(msg_body, list):
        for index, element in enumerate(msg_body):
            if not isinstance(element, dict):
                continue
            msg_type = element.get("MsgType")
            content = element.get("MsgContent")
            if not isinstance(msg_type, str) or not isinstance(content, dict):
                continue
            for key in TEXT_FIELDS.get(msg_type, ()):
                value = content.get(key)
                if isinstance(value, str):
                    yield from _iter_value(value, f"MsgBody[{index}].{key}", 0)
                elif isinstance(value, list) and key == "AbstractList":
                    yield from _iter_value(
                        value, f"MsgBody[{index}].{key}", MAX_JSON_DEPTH
                    )
    if isinstance(cloud_custom_data, str):
        yield from _iter_value(cloud_custom_data, "CloudCustomData", 0)


def _mask_string(value: str, spans: list[tuple[int, int]]) -> str:
    """value with the characters of spans replaced by "*" (overlapping spans merged first, so a flood
    of overlapping hits costs no more than the string's length)."""
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        start, end = max(start, pos), min(end, len(value))
        if end <= start:
            continue
        out.append(value[pos:start])
        out.append("*" * (end - start))
        pos = end
    out.append(value[pos:])
    return "".join(out)


def _mask_value(
    value,
    path: str,
    depth: int,
    masks: dict[str, list[tuple[int, int]]],
    mask_all: bool,
):
    """Masked copy of value (str, dict or list), following the same paths as _iter_value."""
    if isinstance(value, str):
        parsed = _parse_container(value) if depth < MAX_JSON_DEPTH else None
        if parsed is None:
            if mask_all:
                return "*" * len(value)
            spans = masks.get(path)
            return _mask_string(value, spans) if spans else value
        new = _mask_value(parsed, path, depth + 1, masks, mask_all)
        if new == parsed:
            return value
        return json.dumps(new, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, dict):
        return {
            k: _mask_value(v, f"{path}.{k}", depth, masks, mask_all)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _mask_value(v, f"{path}[{i}]", depth, masks, mask_all)
            for i, v in enumerate(value)
        ]
    return value


def mask_message(
    msg_body,
    cloud_custom_data,
    masks: dict[str, list[tuple[int, int]]],
    *,
    mask_all: bool = False,
) -> tuple[list | None, str | None]:
    """Masked copies: (MsgBody, CloudCustomData or None when unchanged). The input is not modified."""
    new_body = None
    if isinstance(msg_body, list):
        new_body = []
        for index, element in enumerate(msg_body):
            content = element.get("MsgContent") if isinstance(element, dict) else None
            msg_type = element.get("MsgType") if isinstance(element, dict) else None
            keys = TEXT_FIELDS.get(msg_type, ()) if isinstance(msg_type, str) else ()
            if not isinstance(content, dict) or not keys:
                new_body.append(_deep_copy(element))
                continue
            new_content = {}
            for key, value in content.items():
                if key in keys and isinstance(value, str):
                    new_content[key] = _mask_value(
                        value, f"MsgBody[{index}].{key}", 0, masks, mask_all
                    )
                elif key in keys and isinstance(value, list) and key == "AbstractList":
                    new_content[key] = _mask_value(
                        value,
                        f"MsgBody[{index}].{key}",
                        MAX_JSON_DEPTH,
                        masks,
                        mask_all,
                    )
                else:
                    new_content[key] = _deep_copy(value)
            new_element = {
                k: (new_content if k == "MsgContent" else _deep_copy(v))
                for k, v in element.items()
            }
            new_body.append(new_element)
    new_ccd = None
    if isinstance(cloud_custom_data, str):
        masked = _mask_value(cloud_custom_data, "CloudCustomData", 0, masks, mask_all)
        if masked != cloud_custom_data:
            new_ccd = masked
    return new_body, new_ccd


def _deep_copy(value):
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------
# Compiled rule set
# --------------------------------------------------------------------------------------------------


@dataclass
class _Term:
    """One listed term on the automaton: a word/allow rule or one piece of a wildcard."""

    rule_index: int
    gaps: frozenset[int]  # separator positions inside the listed term (phrase spaces)
    piece: int = -1  # wildcard piece number, -1 for words and allow entries
    allow: bool = False


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
    _automaton: ahocorasick_rs.AhoCorasick | None = None
    _terms: list[list[_Term]] = field(default_factory=list)
    _wildcards: dict[int, _Wildcard] = field(default_factory=dict)
    _regexes: list[tuple[int, regex.Pattern, str | None]] = field(default_factory=list)
    _users: dict[str, list[int]] = field(default_factory=dict)
    _has_text_rules: bool = False
    # Regex prefilter: regexes without a required literal always run; the others only when an
    # automaton over the case-folded text finds their literal.
    _regex_always: list[tuple[int, regex.Pattern]] = field(default_factory=list)
    _regex_by_literal: list[list[tuple[int, regex.Pattern]]] = field(
        default_factory=list
    )
    _literal_automaton: ahocorasick_rs.AhoCorasick | None = None
    # Emoji / symbol-only words and allow entries, matched on the light text: (rule index, is allow).
    _symbol_terms: list[list[tuple[int, bool]]] = field(default_factory=list)
    _symbol_automaton: ahocorasick_rs.AhoCorasick | None = None

    @classmethod
    def compile(cls, rules: Iterable[Rule]) -> RuleSet:
        started = time.perf_counter()
        kept: list[Rule] = []
        skipped: list[tuple[int, str]] = []
        pattern_index: dict[str, int] = {}
        patterns: list[str] = []
        terms: list[list[_Term]] = []
        wildcards: dict[int, _Wildcard] = {}
        regexes: list[tuple[int, regex.Pattern, str | None]] = []
        users: dict[str, list[int]] = {}
        symbol_index: dict[str, list[tuple[int, bool]]] = {}

        def skip(rule: Rule, reason: str) -> None:
            skipped.append((rule.id, reason))
            logger.warning("blocklist rule %s skipped: %s", rule.id, reason)

        def add_term(text: str, term: _Term) -> None:
            idx = pattern_index.get(text)
            if idx is None:
                idx = pattern_index[text] = len(patterns)
                patterns.append(text)
                terms.append([])
            terms[idx].append(term)

        for rule in rules:
            reason = _invalid_reason(rule)
            if reason:
                skip(rule, reason)
                continue
            index = len(kept)
            if rule.kind in ("word", "allow"):
                norm = NormText(rule.term)
                if not norm.strict:
                    # Emoji and symbol-only terms ("🍆", "卍", "$$$") are matched as they stand
                    # on the light text, where symbols are kept.
                    symbol = norm.light.strip()
                    if not symbol:
                        skip(rule, "nothing to match")
                        continue
                    symbol_index.setdefault(symbol, []).append(
                        (index, rule.kind == "allow")
                    )
                    kept.append(rule)
                    continue
                add_term(
                    norm.strict,
                    _Term(index, _term_gaps(norm), allow=rule.kind == "allow"),
                )
            elif rule.kind == "wildcard":
                raw_pieces = [NormText(p) for p in rule.term.split("*")]
                pieces = [p for p in raw_pieces if p.strict]
                if not pieces:
                    skip(rule, "no letters or digits")
                    continue
                for number, piece in enumerate(pieces):
                    add_term(piece.strict, _Term(index, _term_gaps(piece), number))
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
                regexes.append((index, compiled, required_literal(folded)))
            elif rule.kind == "user":
                users.setdefault(rule.term, []).append(index)
            kept.append(rule)

        automaton = None
        if patterns:
            automaton = ahocorasick_rs.AhoCorasick(
                patterns,
                matchkind=ahocorasick_rs.MatchKind.Standard,
                store_patterns=False,
            )
        regex_always, regex_by_literal, literal_automaton = _regex_prefilter(regexes)
        ruleset = cls(
            rules=kept,
            _regex_always=regex_always,
            _regex_by_literal=regex_by_literal,
            _literal_automaton=literal_automaton,
            skipped=skipped,
            _automaton=automaton,
            _terms=terms,
            _wildcards=wildcards,
            _regexes=regexes,
            _users=users,
            _has_text_rules=bool(patterns or regexes or symbol_index),
            _symbol_terms=list(symbol_index.values()),
            _symbol_automaton=(
                ahocorasick_rs.AhoCorasick(
                    list(symbol_index), matchkind=ahocorasick_rs.MatchKind.Standard
                )
                if symbol_index
                else None
            ),
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
        from_account: str,
        msg_body: list,
        cloud_custom_data: str | None,
        now: float | None = None,
    ) -> Verdict:
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
            for path, text in iter_texts(msg_body, cloud_custom_data):
                hits, allows = self._scan(text, path, now, deadline)
                candidates.extend(hits)
                suppressors.extend(allows)
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
        hits, allows = self._scan(text, "text", now, time.perf_counter() + REGEX_BUDGET)
        return [self._hit(c) for c in hits] + [self._hit(c, "allow") for c in allows]

    def _hit(self, cand: _Candidate, action: str | None = None) -> Hit:
        rule = self.rules[cand.rule_index]
        return Hit(
            rule.id, rule.kind, action or rule.action, cand.field, cand.start, cand.end
        )

    def _scan(
        self, text: str, path: str, now: float, deadline: float
    ) -> tuple[list[_Candidate], list[_Candidate]]:
        """(effective hits, allow matches that suppressed at least one hit) for one string.

        Allow-list suppression compares single occurrences; afterwards the overlapping or touching
        occurrences of one entry become one hit, so a flood ("哈哈哈哈..." against "哈哈") yields one
        hit and one masked run rather than thousands."""
        norm = NormText(text)
        raw: list[tuple[int, int, int]] = []  # (rule index, light start, light end)
        allows: list[tuple[int, int, int]] = []
        if self._automaton is not None and norm.strict:
            self._scan_terms(norm, now, raw, allows)
        if self._symbol_automaton is not None and norm.light:
            for pat, s, e in self._symbol_automaton.find_matches_as_indexes(
                norm.light, overlapping=True
            ):
                for index, allow in self._symbol_terms[pat]:
                    if self._active(index, now):
                        (allows if allow else raw).append((index, s, e))
        if self._regexes and norm.light:
            self._scan_regexes(norm, now, raw, deadline)
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
        norm: NormText,
        now: float,
        raw: list[tuple[int, int, int]],
        allows: list[tuple[int, int, int]],
    ) -> None:
        """Words, phrases, wildcard pieces and allow entries: one Aho-Corasick pass."""
        assert self._automaton is not None  # the caller checked
        matches = self._automaton.find_matches_as_indexes(norm.strict, overlapping=True)
        if not matches:
            return
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
            for term in self._terms[pat]:
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
        now: float,
        raw: list[tuple[int, int, int]],
        deadline: float,
    ) -> None:
        light = norm.light
        to_run = self._regex_always
        if self._literal_automaton is not None:
            found = self._literal_automaton.find_matches_as_indexes(
                light, overlapping=True
            )
            if found:
                to_run = list(to_run)
                for literal in sorted({pat for pat, _, _ in found}):
                    to_run.extend(self._regex_by_literal[literal])
                to_run.sort(key=lambda item: item[0])
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
        best = max(candidates, key=lambda c: _RANK[self.rules[c.rule_index].action])
        best_rule = self.rules[best.rule_index]
        action = best_rule.action
        if action == "forbid_code":
            assert best_rule.code is not None  # Rule's validation requires it
            return Verdict(action, best_rule.code, best_rule.info, hits)
        if action != "mask":
            return Verdict(action, _ERROR_CODE[action], "", hits)
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


def _regex_prefilter(
    regexes: list[tuple[int, regex.Pattern, str | None]],
) -> tuple[
    list[tuple[int, regex.Pattern]],
    list[list[tuple[int, regex.Pattern]]],
    ahocorasick_rs.AhoCorasick | None,
]:
    """(regexes that always run, regexes grouped by required literal, automaton over the literals)."""
    always: list[tuple[int, regex.Pattern]] = []
    by_literal: list[list[tuple[int, regex.Pattern]]] = []
    literal_index: dict[str, int] = {}
    for index, compiled, literal in regexes:
        if literal is None:
            always.append((index, compiled))
            continue
        if literal not in literal_index:
            literal_index[literal] = len(by_literal)
            by_literal.append([])
        by_literal[literal_index[literal]].append((index, compiled))
    automaton = None
    if literal_index:
        automaton = ahocorasick_rs.AhoCorasick(
            list(literal_index), matchkind=ahocorasick_rs.MatchKind.Standard
        )
    return always, by_literal, automaton


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
