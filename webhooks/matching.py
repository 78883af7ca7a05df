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
import json
import logging
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import ahocorasick_rs
import regex

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
    action: (
        str  # the rule's action, or "allow" for an allow entry that suppressed a hit
    )
    field: str  # "MsgBody[0].Text", "MsgBody[1].Data.Data", "CloudCustomData", "From_Account", ...
    start: int  # character offsets in the original string of that field
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

# Removed before matching: format characters (ZWSP/ZWNJ/ZWJ, word joiner, BOM, soft hyphen, bidi
# controls, tag characters), the combining grapheme joiner, Hangul fillers (letters that render as
# nothing), variation selectors and the combining-diacritic blocks used for "zalgo" text. Script-essential
# marks (Thai, Devanagari, Arabic harakat, ...) are kept.
_INVISIBLE = regex.compile(
    "[\\p{Cf}\u034f\u115f\u1160\u3164\uffa0\u17b4\u17b5\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff"
    "\u20d0-\u20ff\ufe20-\ufe2f\ufe00-\ufe0f\U000e0100-\U000e01ef]"
)
_CLUSTER = regex.compile(r"\X", regex.DOTALL)
_WORD_RUN = regex.compile(r"[\p{L}\p{N}\p{M}]+")
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
        if len(_cluster_cache) >= _CLUSTER_CACHE_MAX:
            _cluster_cache.clear()
        _cluster_cache[cluster] = out
    return out


class NormText:
    """A string in two normalised forms, with maps back to the original characters.

    ``light``: NFKC, case-folded, invisible characters removed (what regexes see).
    ``strict``: only the letters, digits and marks of ``light`` (what words and wildcards see).
    """

    __slots__ = (
        "original",
        "light",
        "strict",
        "_lstart",
        "_lend",
        "_run_strict",
        "_run_light",
    )

    def __init__(self, text: str) -> None:
        self.original = text
        cf = text.casefold()
        if (
            len(cf) == len(text)
            and unicodedata.is_normalized("NFKC", text)
            and not _INVISIBLE.search(text)
        ):
            # Fast path (plain ASCII, most CJK): one light character per original character.
            self.light = cf
            self._lstart: list[int] | None = None
            self._lend: list[int] | None = None
        else:
            pieces: list[str] = []
            lstart: list[int] = []
            lend: list[int] = []
            pos = 0
            for cluster in _CLUSTER.findall(text):
                end = pos + len(cluster)
                out = _fold_cluster(cluster)
                if len(out) == 1:
                    pieces.append(out)
                    lstart.append(pos)
                    lend.append(end)
                elif out:
                    for ch in out:
                        pieces.append(ch)
                        lstart.append(pos)
                        lend.append(end)
                pos = end
            self.light = "".join(pieces)
            self._lstart = lstart
            self._lend = lend
        light = self.light
        runs = _WORD_RUN.findall(light)
        if len(runs) == 1 and len(runs[0]) == len(light):
            self.strict = light
            self._run_strict = [0]
            self._run_light = [0]
        else:
            run_strict: list[int] = []
            run_light: list[int] = []
            n = 0
            for m in _WORD_RUN.finditer(light):
                run_strict.append(n)
                run_light.append(m.start())
                n += m.end() - m.start()
            self.strict = "".join(runs)
            self._run_strict = run_strict
            self._run_light = run_light

    # -- coordinates ------------------------------------------------------------------------------
    def strict_to_light(self, k: int) -> int:
        i = bisect.bisect_right(self._run_strict, k) - 1
        return self._run_light[i] + (k - self._run_strict[i])

    def light_span_to_original(self, ls: int, le: int) -> tuple[int, int]:
        if self._lstart is None:
            return ls, le
        if le <= ls:
            return self._lstart[ls], self._lstart[ls]
        return self._lstart[ls], self._lend[le - 1]

    def strict_span_to_original(self, s: int, e: int) -> tuple[int, int]:
        ls = self.strict_to_light(s)
        le = self.strict_to_light(e - 1) + 1
        return self.light_span_to_original(ls, le)

    # -- word structure (strict coordinates) -------------------------------------------------------
    def separated_before(self, k: int) -> bool:
        """True when a space, punctuation or symbol stands between strict characters k-1 and k."""
        if k <= 0 or k >= len(self.strict):
            return True
        i = bisect.bisect_left(self._run_strict, k)
        return i < len(self._run_strict) and self._run_strict[i] == k

    def boundary_before(self, k: int) -> bool:
        if self.separated_before(k):
            return True
        s = self.strict
        return _NO_SPACE_SCRIPT.search(s, k - 1, k + 1) is not None

    def gaps(self, s: int, e: int) -> set[int]:
        """Offsets (relative to s) inside (s, e) where separators split the strict text."""
        rs = self._run_strict
        i = bisect.bisect_right(rs, s)
        out: set[int] = set()
        while i < len(rs) and rs[i] < e:
            out.add(rs[i] - s)
            i += 1
        return out

    def has_gap_inside(self, s: int, e: int) -> bool:
        """True when a separator stands strictly inside (s, e), i.e. before one of s+1 .. e-1."""
        rs = self._run_strict
        i = bisect.bisect_right(rs, s)
        return i < len(rs) and rs[i] < e


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
    _regexes: list[tuple[int, regex.Pattern]] = field(default_factory=list)
    _users: dict[str, list[int]] = field(default_factory=dict)
    _has_text_rules: bool = False

    @classmethod
    def compile(cls, rules: Iterable[Rule]) -> RuleSet:
        started = time.perf_counter()
        kept: list[Rule] = []
        skipped: list[tuple[int, str]] = []
        pattern_index: dict[str, int] = {}
        patterns: list[str] = []
        terms: list[list[_Term]] = []
        wildcards: dict[int, _Wildcard] = {}
        regexes: list[tuple[int, regex.Pattern]] = []
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
                regexes.append((index, compiled))
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
        ruleset = cls(
            rules=kept,
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
            for index, pattern in self._regexes:
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
