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
* Normalisation sees through simple evasion: each grapheme cluster is NFKC-normalised (full-width and
  half-width forms, ligatures, circled and mathematical letters) and case-folded; zero-width and other
  format characters (ZWSP, ZWJ, word joiner, BOM, soft hyphen, bidi controls, tags), variation selectors,
  Hangul fillers and stacked diacritics ("zalgo") are removed. Accents that compose into a letter are kept:
  "bád" is not "bad".
* Words, phrases and wildcard pieces are compared on the *letters and digits only* form of that text:
  spaces, punctuation and symbols are ignored, both in the text and in the listed term ("bad word" matches
  "b.a.d  w-o r d" and "badword").
* Words and phrases match as substrings (Chinese, Japanese, Korean and Thai have no word boundaries, and
  this catches compounds). Allow-list entries exist to exempt the innocent words that contain a listed one
  ("class" against "ass"). To keep ignoring separators from gluing unrelated words together ("was sent"
  would contain "ass"), a match whose letters are split by separators the listed term does not have must
  start and end on word boundaries: "a s s" and "you a.s.s!" match, "was sent" does not. Characters of
  Han, Hiragana, Katakana, Hangul, Thai, Lao, Khmer and Myanmar scripts are word boundaries on their own.
* Wildcards follow Discord AutoMod's keyword strategies: ``cat`` matches the whole word only, ``cat*``
  words starting with cat, ``*cat`` words ending with it, ``*cat*`` anywhere. ``*`` may also stand inside
  a pattern (``f*ck``, ``buy * followers``): there it matches any run of letters within one word (at most
  64), with word separators allowed only at its two edges. The hit, and so the mask, covers the whole
  matched word(s).
* Regular expressions (the ``regex`` package, case-insensitive) run on the NFKC / case-folded text with
  invisible characters removed but spacing and punctuation kept, so ``\\s`` and ``\\b`` work. Each search
  has a time bound (:data:`REGEX_TIMEOUT`); a search that runs out of time counts as no match and is
  logged and counted in :attr:`RuleSet.regex_timeouts`.
* User entries compare ``From_Account`` exactly. A user entry with action ``mask`` masks every inspected
  string of that user's messages.
* Allow entries are phrases matched like words (without the word-boundary condition); an allow match
  whose span covers a word, wildcard or regex hit in the same string suppresses that hit.
* Precedence: forbid / forbid_code (user entries first among them) before discard before mask. Expired
  entries (``expires_at <= now``) never match. The verdict lists every hit, including the allow entries that
  suppressed something (with action ``"allow"``).
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
    from re import _constants as _sre_constants
    from re import _parser as _sre_parser
except ImportError:  # pragma: no cover
    _sre_parser = None

logger = logging.getLogger(__name__)

KINDS = ("word", "wildcard", "regex", "user", "allow")
ACTIONS = ("forbid", "forbid_code", "discard", "mask")
FORBID_CODE_MIN = 10100
FORBID_CODE_MAX = 10200
# Time bound for one regex search over one string. The provider gives the webhook two seconds for the
# whole answer; 100 regexes over a few strings must stay far below that even when several misbehave.
REGEX_TIMEOUT = 0.005
MAX_REGEX_LENGTH = 500
# How far a "*" inside a wildcard pattern may stretch (normalised characters).
MAX_WILDCARD_GAP = 64
# JSON strings nested in JSON strings are unwrapped this many levels deep.
MAX_JSON_DEPTH = 3

_RANK = {"forbid": 3, "forbid_code": 3, "discard": 2, "mask": 1}
_ERROR_CODE = {"forbid": 1, "discard": 2, "mask": 0}

# MsgContent keys that carry text, per element type (PROVIDERS.md section 4).
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
    # Character offsets in the original string of that field.
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
        """The webhook answer in the documented format (provider-docs 004)."""
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
        if self._lstart is None:
            return ls, le
        if le <= ls:
            return self._lstart[ls], self._lstart[ls]
        return self._lstart[ls], self._lend[le - 1]

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


def compile_regex_or_error(pattern: str) -> str | None:
    """Save-time check of a regex entry: None when it is acceptable, else a message for the moderator."""
    if not isinstance(pattern, str) or not pattern.strip():
        return "Enter a regular expression."
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"A regular expression may have at most {MAX_REGEX_LENGTH} characters."
    try:
        compiled = regex.compile(pattern, regex.IGNORECASE)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        return f"Not a valid regular expression: {exc}."
    problem = _catastrophic_reason(pattern)
    if problem:
        return problem
    if compiled.search("", timeout=REGEX_TIMEOUT) is not None:
        return "This regular expression matches an empty text, so it would match every message."
    return None


def _catastrophic_reason(pattern: str) -> str | None:
    """Refuse the shapes that make backtracking explode: a repeated group that itself contains a repeat
    (``(a+)+``, ``(\\w*\\s?)*``, ``(.*x){20}``) and a repeated alternation whose branches can start alike
    (``(a|aa)+``, ``(\\w|\\d)*``). Conservative by design: the moderator can rewrite with a single
    quantifier or a character class, and the per-search time bound remains the backstop."""
    # Each open group: [contains_repeat, branch_first_chars, at_branch_start, has_alternation, ambiguous]
    stack: list[list] = [[False, [], True, False, False]]
    last_group: list | None = None  # the group that just closed (quantifier may follow)
    i = 0
    n = len(pattern)

    def first_atom(group: list, atom: str) -> None:
        if group[2]:
            group[2] = False
            if atom in group[1]:
                group[4] = True
            group[1].append(atom)

    while i < n:
        c = pattern[i]
        quant = _quantifier_at(pattern, i)
        if quant is not None:
            length, multi = quant
            if multi:
                if last_group is not None:
                    if last_group[0]:
                        return (
                            "This regular expression repeats a group that itself contains a repeat "
                            "(like (a+)+); such patterns can take exponential time. Use a single "
                            "quantifier or a character class instead."
                        )
                    if last_group[3] and last_group[4]:
                        return (
                            "This regular expression repeats alternatives that can match the same text "
                            "(like (a|aa)+); such patterns can take exponential time. Make the "
                            "alternatives start differently or use a character class."
                        )
                stack[-1][0] = True
            last_group = None
            i += length
            continue
        last_group = None
        if c == "\\":
            atom = pattern[i : i + 2]
            first_atom(stack[-1], "\\" if atom[1:2].isalpha() else atom)
            i += 2
            if atom[1:2] in ("p", "P", "N") and i < n and pattern[i] == "{":
                close = pattern.find("}", i)
                i = n if close < 0 else close + 1
            continue
        if c == "[":
            first_atom(stack[-1], "[")
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
            i = j
            continue
        if c == "(":
            first_atom(stack[-1], "(")
            stack.append([False, [], True, False, False])
            i += 1
            if i < n and pattern[i] == "?":
                # Skip the group flag syntax: (?:  (?P<name>  (?<name>  (?=  (?!  (?<=  (?>  (?i)
                j = i + 1
                if pattern[j : j + 2] in ("<=", "<!"):
                    j += 2
                elif pattern[j : j + 2] == "P=":
                    close = pattern.find(")", j)
                    j = n if close < 0 else close
                elif j < n and pattern[j] in "P<'":
                    close = pattern.find(">" if pattern[j] != "'" else "'", j + 2)
                    j = n if close < 0 else close + 1
                else:
                    while j < n and pattern[j] not in ":)":
                        if pattern[j] in "=!>":
                            j += 1
                            break
                        j += 1
                    else:
                        if j < n and pattern[j] == ":":
                            j += 1
                i = j
            continue
        if c == ")":
            if len(stack) > 1:
                closed = stack.pop()
                if closed[0]:
                    stack[-1][0] = True
                last_group = closed
            i += 1
            continue
        if c == "|":
            stack[-1][3] = True
            stack[-1][2] = True
            i += 1
            continue
        first_atom(stack[-1], "." if c == "." else c.casefold())
        i += 1
    return None


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
    """The parsed JSON when value is a JSON object or array, else None."""
    stripped = value.lstrip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        parsed = json.loads(value, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict | list) else None


def _refuse_constant(name: str):
    # NaN / Infinity are not JSON; a string carrying them is treated as plain text.
    raise ValueError(name)


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
    chars = list(value)
    for start, end in spans:
        for k in range(max(start, 0), min(end, len(chars))):
            chars[k] = "*"
    return "".join(chars)


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
    rules: list[Rule]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    regex_timeouts: int = 0
    build_seconds: float = 0.0
    _automaton: object = None
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
    _literal_automaton: object = None

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
                skipped.append((rule.id, reason))
                logger.warning("blocklist rule %s skipped: %s", rule.id, reason)
                continue
            index = len(kept)
            if rule.kind in ("word", "allow"):
                norm = NormText(rule.term)
                if not norm.strict:
                    skipped.append((rule.id, "no letters or digits"))
                    continue
                add_term(
                    norm.strict, _Term(index, frozenset(norm.gaps(0, len(norm.strict))))
                )
            elif rule.kind == "wildcard":
                raw_pieces = [NormText(p) for p in rule.term.split("*")]
                pieces = [p for p in raw_pieces if p.strict]
                if not pieces:
                    skipped.append((rule.id, "no letters or digits"))
                    continue
                for number, piece in enumerate(pieces):
                    add_term(
                        piece.strict,
                        _Term(
                            index, frozenset(piece.gaps(0, len(piece.strict))), number
                        ),
                    )
                stripped = rule.term.strip()
                wildcards[index] = _Wildcard(
                    index, len(pieces), stripped.startswith("*"), stripped.endswith("*")
                )
            elif rule.kind == "regex":
                try:
                    compiled = regex.compile(rule.term, regex.IGNORECASE)
                except (regex.error, ValueError, OverflowError, RecursionError) as exc:
                    skipped.append((rule.id, f"regex does not compile: {exc}"))
                    logger.warning(
                        "blocklist rule %s skipped: regex does not compile", rule.id
                    )
                    continue
                regexes.append((index, compiled, required_literal(rule.term)))
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
        regex_always: list[tuple[int, regex.Pattern]] = []
        regex_by_literal: list[list[tuple[int, regex.Pattern]]] = []
        literal_index: dict[str, int] = {}
        for index, compiled, literal in regexes:
            if literal is None:
                regex_always.append((index, compiled))
                continue
            if literal not in literal_index:
                literal_index[literal] = len(regex_by_literal)
                regex_by_literal.append([])
            regex_by_literal[literal_index[literal]].append((index, compiled))
        literal_automaton = None
        if literal_index:
            literal_automaton = ahocorasick_rs.AhoCorasick(
                list(literal_index), matchkind=ahocorasick_rs.MatchKind.Standard
            )
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
            _has_text_rules=bool(patterns or regexes),
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
            for path, text in iter_texts(msg_body, cloud_custom_data):
                hits, allows = self._scan(text, path, now)
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
        hits, allows = self._scan(text, "text", now)
        return [self._hit(c) for c in hits] + [self._hit(c, "allow") for c in allows]

    def _hit(self, cand: _Candidate, action: str | None = None) -> Hit:
        rule = self.rules[cand.rule_index]
        return Hit(
            rule.id, rule.kind, action or rule.action, cand.field, cand.start, cand.end
        )

    def _scan(
        self, text: str, path: str, now: float
    ) -> tuple[list[_Candidate], list[_Candidate]]:
        """(effective hits, allow matches that suppressed at least one hit) for one string."""
        norm = NormText(text)
        hits: list[_Candidate] = []
        allows: list[
            tuple[int, int, int]
        ] = []  # (rule index, original start, original end)
        if self._automaton is not None and norm.strict:
            pieces: dict[int, dict[int, list[tuple[int, int]]]] = {}
            for pat, s, e in self._automaton.find_matches_as_indexes(
                norm.strict, overlapping=True
            ):
                for term in self._terms[pat]:
                    index = term.rule_index
                    if not self._active(index, now):
                        continue
                    rule = self.rules[index]
                    if rule.kind == "allow":
                        allows.append((index, *norm.strict_span_to_original(s, e)))
                        continue
                    if not _aligned(norm, s, e, term.gaps):
                        continue
                    if term.piece < 0:
                        hits.append(
                            _Candidate(index, path, *norm.strict_span_to_original(s, e))
                        )
                    else:
                        pieces.setdefault(index, {}).setdefault(term.piece, []).append(
                            (s, e)
                        )
            for index, occurrences in pieces.items():
                for s, e in _wildcard_matches(
                    norm, self._wildcards[index], occurrences
                ):
                    hits.append(
                        _Candidate(index, path, *norm.strict_span_to_original(s, e))
                    )
        if self._regexes and norm.light:
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
                try:
                    for m in pattern.finditer(norm.light, timeout=REGEX_TIMEOUT):
                        if m.end() > m.start():
                            hits.append(
                                _Candidate(
                                    index,
                                    path,
                                    *norm.light_span_to_original(m.start(), m.end()),
                                )
                            )
                except TimeoutError:
                    self.regex_timeouts += 1
                    logger.warning(
                        "blocklist regex rule %s timed out on %s characters",
                        self.rules[index].id,
                        len(text),
                    )
        if not hits or not allows:
            return hits, []
        kept: list[_Candidate] = []
        used: set[tuple[int, int, int]] = set()
        for cand in hits:
            cover = next(
                (a for a in allows if a[1] <= cand.start and cand.end <= a[2]), None
            )
            if cover is None:
                kept.append(cand)
            else:
                used.add(cover)
        return kept, [_Candidate(a[0], path, a[1], a[2]) for a in allows if a in used]

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
            return Verdict(action, int(best_rule.code), best_rule.info, hits)
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
    if len(occurrences) < wildcard.pieces:
        return []
    found: list[tuple[int, int]] = []
    last = wildcard.pieces - 1
    ordered = [sorted(occurrences[p]) for p in range(wildcard.pieces)]
    for s0, e0 in ordered[0]:
        if not wildcard.lead and not norm.boundary_before(s0):
            continue
        end = e0
        ok = True
        for p in range(1, wildcard.pieces):
            chosen = None
            for s, e in ordered[p]:
                if s < end:
                    continue
                if s - end > MAX_WILDCARD_GAP or norm.has_gap_inside(end, s):
                    break
                if p == last and not wildcard.trail and not norm.boundary_before(e):
                    continue
                chosen = e
                break
            if chosen is None:
                ok = False
                break
            end = chosen
        if not ok:
            continue
        if last == 0 and not wildcard.trail and not norm.boundary_before(end):
            continue
        start = s0
        # "*" at an end stretches the hit over the rest of the word, so masking hides the whole word.
        if wildcard.lead:
            while not norm.boundary_before(start):
                start -= 1
        if wildcard.trail:
            while not norm.boundary_before(end):
                end += 1
        found.append((start, end))
    return found
