"""Regex safety: the save-time check, the pattern's folding and the prefilter literal."""

from __future__ import annotations

from dataclasses import dataclass, field

import regex

from webhooks.matching.normalise import _fold_cluster

# The stdlib's regex parser, used only to find a literal every match must contain (a prefilter). A
# future Python may move it; the prefilter is then off and every regex runs.
try:
    from re import _constants as _sre_constants  # type: ignore[attr-defined]
    from re import _parser as _sre_parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _sre_parser = None

# Time bound for one regex search over one string. The provider gives the webhook two seconds for the
# whole answer; 100 regexes over a few strings must stay far below that even when several misbehave.
REGEX_TIMEOUT = 0.005
# Time all the regex searches of one message may take together (seconds).
REGEX_BUDGET = 0.1
MAX_REGEX_LENGTH = 500


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
    """The longest literal (case-folded) that every match of pattern must contain, or None."""
    literals, _ = required_literals(pattern)
    return literals[0] if literals else None


def required_literals(pattern: str) -> tuple[list[str], bool]:
    """(the literals every match of pattern must contain, longest first, case-folded; whether
    every match contains a digit).

    Running 100 regexes over every string costs far more than the whole Aho-Corasick scan; most
    moderator patterns contain fixed words ("followers", "wx") and digits (phone numbers, IDs). A
    regex runs only when the text holds all its literals (one automaton finds them all) and, when
    it needs one, a digit. Only patterns the stdlib parser understands get a prefilter; others
    always run. Literals of one character count only when the pattern has no longer one.
    """
    if _sre_parser is None or _REGEX_ONLY_SYNTAX.search(pattern):
        return [], False
    try:
        tree = _sre_parser.parse(pattern)
    except (
        Exception
    ):  # regex-only syntax (\\p{Han}, ...) or anything the stdlib refuses
        return [], False
    c = _sre_constants
    repeats = (
        c.MAX_REPEAT,
        c.MIN_REPEAT,
        getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT),
    )
    runs: list[str] = []
    needs_digit = False

    def is_digit_class(op, av) -> bool:
        if op is c.LITERAL:
            return chr(av).isdigit()
        if op is not c.IN or not av or av[0][0] is c.NEGATE:
            return False
        return all(
            (o is c.CATEGORY and a is c.CATEGORY_DIGIT)
            or (o is c.RANGE and 48 <= a[0] <= a[1] <= 57)
            or (o is c.LITERAL and 48 <= a <= 57)
            for o, a in av
        )

    def walk(items) -> None:
        nonlocal needs_digit
        run: list[str] = []
        for op, av in items:
            if is_digit_class(op, av):
                needs_digit = True
            if op is c.LITERAL:
                run.append(chr(av))
                continue
            if run:
                runs.append("".join(run))
            run = []
            if op is c.SUBPATTERN:
                walk(av[-1])
            elif op in repeats and av[0] >= 1:
                walk(av[2])
            elif op is getattr(c, "ATOMIC_GROUP", None):
                walk(av)
        if run:
            runs.append("".join(run))

    walk(tree)
    literals = sorted(
        {run.casefold() for run in runs if len(run.casefold()) == len(run)},
        key=lambda x: (-len(x), x),
    )
    if literals and len(literals[0]) > 1:
        literals = [lit for lit in literals if len(lit) > 1]
    return literals, needs_digit
