"""Normalisation: the text as a reader reads it, with maps back to the original characters."""

from __future__ import annotations

import array
import bisect
import itertools
import re
import types
import unicodedata

import regex

from webhooks.matching.charclass import CharClass, has_astral, ranges_class
from webhooks.matching.fold import FOLD

try:
    # The light and letters-only forms of plain BMP text in one C pass (_plainfold.c),
    # built with the compiled hot path (webhooks/compiled.py); else the Python below.
    from webhooks.matching import _plainfold as _plainfold_module

    _plainfold: types.ModuleType | None = _plainfold_module
except ImportError:
    _plainfold = None


def _class_body(predicate) -> str:
    """A stdlib ``re`` character-class body for the code points (BMP, SMP and the tag/variation-selector
    plane) whose category satisfies predicate. The stdlib engine tests a short class a few times faster
    than the ``regex`` package's property lookup, and this runs on every string (built once, ~30 ms)."""
    return ranges_class(
        [
            cp
            for cp in itertools.chain(range(0x20000), range(0xE0000, 0xE1000))
            if predicate(unicodedata.category(chr(cp)))
        ]
    )


# Removed before matching: format characters (ZWSP/ZWNJ/ZWJ, word joiner, BOM, soft hyphen, bidi
# controls, tag characters), the combining grapheme joiner, Hangul fillers (letters that render as
# nothing), variation selectors and the combining-diacritic blocks used for "zalgo" text. Script-essential
# marks (Thai, Devanagari, Arabic harakat, ...) are kept.
def _invisible() -> re.Pattern[str]:
    return re.compile(
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
_SURROGATE = re.compile("[" + chr(0xD800) + "-" + chr(0xDFFF) + "]")  # lone surrogates


def _is_jamo(ch: str) -> bool:
    cp = ord(ch)
    return 0x1100 <= cp < 0x1200 or 0x3130 <= cp < 0x3190 or 0xFFA0 <= cp < 0xFFE0


def _build_one_to_one(
    invisible: re.Pattern[str],
) -> tuple[dict[int, str], list[int], list[int]]:
    """(table, complex, special): the light form of a text without a character of
    ``complex`` is ``text.translate(table)``, one character for one (NFKC then case
    folding, character by character). A character is complex when it folds to none or
    several characters, is a mark or a Hangul jamo (they compose with their neighbours),
    or is removed as invisible. One C-level pass replaces the piecewise fold for most
    non-ASCII text (full-width punctuation in Chinese chat, accented letters). Special:
    the complex characters, those whose light form the look-alike table folds, and lone
    surrogates (code point lists; _Tables makes the classes and _plainfold's table)."""
    table: dict[int, str] = {}
    complex_cps: list[int] = []
    foldable_cps: list[int] = [
        cp for cp in range(0x41, 0x5B) if chr(cp).lower() in FOLD
    ]
    table.update({cp: chr(cp).lower() for cp in range(0x41, 0x5B)})
    for cp in itertools.chain(
        range(0x80, 0xD800), range(0xE000, 0x20000), range(0xE0000, 0xE1000)
    ):
        ch = chr(cp)
        out = unicodedata.normalize("NFKC", ch).casefold()
        if (
            len(out) != 1
            or unicodedata.category(ch).startswith("M")
            or unicodedata.combining(ch)
            or _is_jamo(ch)
            or _is_jamo(out)
            or unicodedata.category(out).startswith("M")
            or unicodedata.combining(out)
            or invisible.match(ch)
            or invisible.match(out)
            or ch in "\uff9e\uff9f"
        ):
            complex_cps.append(cp)
        else:
            if out != ch:
                table[cp] = out
            if ord(out) in FOLD:
                foldable_cps.append(cp)
    surrogates = list(range(0xD800, 0xE000))
    return table, complex_cps, sorted(complex_cps + foldable_cps + surrogates)


class _Tables:
    """The character tables, built on first use (about a quarter of a second): a process
    that never reads a message (a command, migrate, collectstatic) does not build them.

    ``special``: complex characters, those whose light form the look-alike table
    folds, and lone surrogates. Text with none of them (most chat, CJK or not) takes the fast path and has
    nothing to fold. ``non_word_bmp``: separators in BMP-only text; the stdlib tests a
    BMP class with one bitmap lookup per character, faster than the regex package's
    property classes (used for astral text)."""

    def __init__(self) -> None:
        self.invisible = _invisible()
        self.one_to_one, complex_cps, special_cps = _build_one_to_one(self.invisible)
        self.complex, self.special = CharClass(complex_cps), CharClass(special_cps)
        word_bmp = [
            cp for cp in range(0x10000) if unicodedata.category(chr(cp))[0] in "LNM"
        ]
        # BMP characters NFKC changes one for one (full-width forms, compatibility
        # ideographs, ...), as a capturing class: splitting on it leaves them at the odd
        # places. See _light_of_plain.
        self.nfkc_split = re.compile(
            "(["
            + ranges_class(
                [
                    cp
                    for cp in sorted(self.one_to_one)
                    if cp < 0x10000
                    and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
                ]
            )
            + "])"
        )
        # One character, not a run ("+"): a pattern that starts with a class is scanned
        # for it in one loop, a repeat is tried at every position (3.7 against 2.4 µs
        # for 170 characters).
        self.non_word_bmp = re.compile("[^" + ranges_class(word_bmp) + "]")
        if _plainfold is not None:
            _plainfold.init(
                *_plainfold_table(self.one_to_one, set(special_cps), set(word_bmp))
            )


_SPECIAL = 1 << 16
_WORD = 1 << 17


def _plainfold_table(
    one_to_one: dict[int, str], special: set[int], word: set[int]
) -> tuple[bytes, bytes]:
    """_plainfold.c's table: per BMP code point, (light - cp) mod 2^16, with _SPECIAL
    when the text must take the Python paths (a special character, or one whose light
    form is astral) and _WORD when its light character is a letter, digit or mark. In
    two levels: 256 block numbers by high byte, and the distinct blocks of 256."""
    entries = array.array("I", bytes(4 * 0x10000))
    for cp in range(0x10000):
        out = one_to_one.get(cp)
        light = cp if out is None else ord(out)
        if cp in special or light >= 0x10000:
            entries[cp] = _SPECIAL
            continue
        entries[cp] = ((light - cp) & 0xFFFF) | (_WORD if light in word else 0)
    numbers: dict[bytes, int] = {}
    index = array.array("H")
    for high in range(256):
        block = entries[high * 256 : (high + 1) * 256].tobytes()
        index.append(numbers.setdefault(block, len(numbers)))
    return index.tobytes(), b"".join(numbers)


_built: _Tables | None = None


def _tables() -> _Tables:
    global _built
    if _built is None:
        _built = _Tables()
    return _built


_cluster_cache: dict[str, str] = {}
_CLUSTER_CACHE_MAX = 50_000


def _fold_cluster(cluster: str) -> str:
    out = _cluster_cache.get(cluster)
    if out is None:
        out = _tables().invisible.sub(
            "", unicodedata.normalize("NFKC", cluster).casefold()
        )
        if len(cluster) > 8:  # zalgo runs and the like: not worth keeping in memory
            return out
        if len(_cluster_cache) >= _CLUSTER_CACHE_MAX:
            _cluster_cache.clear()
        _cluster_cache[cluster] = out
    return out


# More characters than this to change, and one NFKC pass beats changing them one by one.
_FEW_CHANGES = 16


def _light_of_plain(text: str, tables: _Tables) -> str:
    """``unicodedata.normalize("NFKC", text).casefold()`` for a text without a special
    character: every character then folds on its own, one for one.

    NFKC decomposes and recomposes a whole text that has one character to change:
    12 µs for 200 characters of Chinese with three full-width commas, against 0.2 µs
    when it has none. Here the few characters to change are changed from the table
    instead (a seeded test compares the two on mixed texts)."""
    if unicodedata.is_normalized("NFKC", text):
        return text.casefold()
    if has_astral(text):
        return unicodedata.normalize("NFKC", text).casefold()
    parts = tables.nfkc_split.split(text)
    if len(parts) > 2 * _FEW_CHANGES + 1:
        return unicodedata.normalize("NFKC", text).casefold()
    table = tables.one_to_one
    parts[1::2] = [table[ord(ch)] for ch in parts[1::2]]
    return "".join(parts).casefold()


def _strict(light: str) -> str:
    """The letters, digits and marks of a non-ASCII light text.

    Most chat separates its words with spaces only: with them removed, ``str.isalnum()``
    (one C pass, letters and numbers only; tests/test_matching.py checks that no
    other character passes it) proves there is nothing else to remove, five times faster
    than the substitution."""
    packed = light.replace(" ", "")
    if packed.isalnum():
        return packed
    # Else the substitution, on the shorter text (fewer, longer pieces to join).
    if has_astral(packed):
        return _NON_WORD.sub("", packed)
    return (_built or _tables()).non_word_bmp.sub("", packed)


class NormText:
    """A string in two normalised forms, with maps back to the original characters.

    ``light``: NFKC, case-folded, invisible characters removed (what regexes see).
    ``strict``: only the letters, digits and marks of ``light`` (what words and wildcards see).
    ``plain``: the text is ASCII or has no character of the slow path (nothing invisible,
    no format or direction control, nothing the look-alike table folds).
    """

    __slots__ = (
        "original",
        "light",
        "strict",
        "_lstart",
        "_lend",
        "_runs",
        "_fold_free",
    )

    def __init__(
        self, text: str, *, _view_of: tuple[NormText, str] | None = None
    ) -> None:
        if _view_of is not None:
            self._init_view(*_view_of)
            return
        self.original = text
        self._lstart: list[int] | None = None
        self._lend: list[int] | None = None
        # True when the look-alike table would change nothing (known without translating).
        self._fold_free = False
        if text.isascii():
            self.light = light = text.lower()
            self.strict = light.translate(_ASCII_NON_WORD)
        else:
            tables = _built or _tables()
            forms = _plainfold.light_strict(text) if _plainfold is not None else None
            if forms is not None:
                # Plain BMP text (most chat): the light and strict forms in one C pass.
                light, self.strict = forms
                self.light = light
                self._fold_free = True
            else:
                self._fold(text, tables)
                light = self.light
                self.strict = _strict(light)
        # Run tables (where separators split the strict text) are built on first use: most strings
        # have no hit and never need them.
        self._runs: tuple[list[int], list[int]] | None = (
            ([0], [0]) if len(self.strict) == len(light) else None
        )

    def _fold(self, text: str, tables: _Tables) -> None:
        """The light form of a non-ASCII text, by the fastest path that is exact for it."""
        # One scan of the text for most messages: lone surrogates are special too.
        special = tables.special.search(text)
        if special and _SURROGATE.search(text):
            # A lone surrogate (legal in JSON escapes) cannot reach the automaton, which
            # takes UTF-8; U+FFFD keeps every offset where it was.
            text = _SURROGATE.sub("\ufffd", text)
            special = tables.special.search(text)
        if not special:
            # Fast path (most text): one light character per original character, nothing
            # the look-alike table folds. NFKC and case folding in C are then exact.
            self.light = _light_of_plain(text, tables)
            self._fold_free = True
        elif not tables.complex.search(text):
            self.light = text.translate(tables.one_to_one)
        else:
            self._fold_slowly(text)

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

    def derive(
        self,
        table: dict[int, str],
        *,
        ascii_too: bool = False,
        trigger: CharClass | None = None,
    ) -> NormText:
        """This text with ``table`` (one character to one character) applied to the light form:
        same original, same light offsets, its own letters-only form. Itself when nothing
        changes (ASCII text under a table that maps only non-ASCII letters)."""
        if not ascii_too and self.light.isascii():
            return self
        if self._fold_free and not ascii_too:
            return self
        if trigger is not None and not trigger.search(self.light):
            return (
                self  # no character the table changes (a cheaper test than translating)
            )
        light = self.light.translate(table)
        if light == self.light:
            return self
        return NormText(self.original, _view_of=(self, light))

    def _init_view(self, of: NormText, light: str) -> None:
        """A view made by ``derive``: ``of`` with another light form."""
        self.original = of.original
        self._lstart = of._lstart
        self._lend = of._lend
        self.light = light
        self._fold_free = False
        self.strict = (
            light.translate(_ASCII_NON_WORD) if light.isascii() else _strict(light)
        )
        self._runs = ([0], [0]) if len(self.strict) == len(light) else None

    @property
    def plain(self) -> bool:
        return self._fold_free or self.original.isascii()

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
