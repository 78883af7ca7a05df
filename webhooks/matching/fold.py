"""Folding: what a reader would read as the same letter becomes one letter.

Applied to the *light* text of :class:`~webhooks.matching.normalise.NormText` (already NFKC,
case-folded, invisible characters removed), as a one-to-one character table, so every offset
still points at the same original character and masks stay exact.

* :data:`FOLD` (every entry unless marked exact): accents and other marks removed after NFD
  (``é`` → ``e``, ``ά`` → ``α``); letters that look like a Latin letter mapped to it, from the
  Unicode TR39 confusables data shipped by the maintained ``confusable-homoglyphs`` package
  (Cyrillic ``а``, Greek ``ο``, dotless ``ı``, ``ɑ``...) and from the Unicode character names for
  small capitals and letters with strokes or hooks (``ᴀ``, ``ʟ``, ``ł``, ``ø``), which TR39 maps
  to other scripts or not at all. Only non-ASCII letters change: ASCII text folds to itself.
  Han, kana and Hangul are never touched (CJK matching is unchanged).
* :data:`LEET` (entries marked leet): FOLD plus digits and symbols read as letters
  (``0`` o, ``1`` i/l, ``3`` e, ``4`` a, ``5`` s, ``7`` t, ``@`` a, ``$`` s). ``1`` reads as
  either i or l, so in this view ``l`` and ``1`` both become ``i`` (in the text and in the term).

Decoding views (HTML entities, percent-escapes) and the bidirectional display order are
separate views of the text, built only when the text has the characters that need them.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from importlib import resources
from urllib.parse import unquote

import confusable_homoglyphs
from bidi import get_display

from webhooks.matching.charclass import CharClass

# Blocks of combining diacritics removed after NFD.
_DIACRITIC = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
)
_LATIN_NAME = re.compile(
    r"LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL |DOTLESS |SCRIPT |TURNED |REVERSED )?"
    r"([A-Z])(?: WITH .*)?$"
)
_UNTOUCHED = ("CJK", "HANGUL", "HIRAGANA", "KATAKANA", "IDEOGRAPHIC", "BOPOMOFO")
CONFUSABLES_SOURCE = "confusable-homoglyphs " + confusable_homoglyphs.__version__


# Lower-case Greek and Cyrillic letters that read as a Latin letter in running text but that
# TR39 maps elsewhere or not at all (it targets the capital forms: Cyrillic "Н" is "H", but the
# small "н" is a small capital H). Kept short: every pair here is a letter a reader takes for
# the Latin one.
_READS_AS = {
    "п": "n",
    "η": "n",
    "к": "k",
    "κ": "k",
    "м": "m",
    "н": "h",
    "т": "t",
    "τ": "t",
    "в": "b",
    "ω": "w",
    "ш": "w",
}


def _confusables() -> dict[str, list[dict[str, str]]]:
    data = resources.files(confusable_homoglyphs).joinpath("confusables.json")
    return json.loads(data.read_text(encoding="utf-8"))


def _latin_look_alike(
    ch: str, confusables: dict[str, list[dict[str, str]]]
) -> str | None:
    """The ASCII letter ch reads as, or None."""
    name = unicodedata.name(ch, "")
    match = _LATIN_NAME.match(name)
    if match:
        return match.group(1).lower()
    for homoglyph in confusables.get(ch, ()):
        target = homoglyph["c"]
        if len(target) == 1 and target.isascii() and target.isalpha():
            return target.lower()
    return None


def _build_fold() -> dict[int, str]:
    confusables = _confusables()
    table: dict[int, str] = {}
    for cp in range(0x80, 0x20000):
        if 0x3400 <= cp < 0xA000 or 0xAC00 <= cp < 0xD800:
            continue  # Han and Hangul syllables: never folded (and the bulk of the range)
        ch = chr(cp)
        if not unicodedata.category(ch).startswith("L"):
            continue
        name = unicodedata.name(ch, "")
        if not name or name.startswith(_UNTOUCHED):
            continue
        base = _DIACRITIC.sub("", unicodedata.normalize("NFD", ch))
        if len(base) != 1:
            base = ch
        target = (
            base if base.isascii() else _latin_look_alike(base, confusables) or base
        )
        target = _READS_AS.get(target, target)
        if target != ch and len(target) == 1:
            table[cp] = target.lower()
    return table


FOLD: dict[int, str] = _build_fold()
# Finds a character FOLD changes: most text (Chinese chat, ASCII) has none and is not copied.
FOLDABLE = CharClass(sorted(FOLD))
_LEET_EXTRA = {
    "0": "o",
    "1": "i",
    "l": "i",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "@": "a",
    "$": "s",
}
LEET: dict[int, str] = {
    **{cp: _LEET_EXTRA.get(target, target) for cp, target in FOLD.items()},
    **{ord(k): v for k, v in _LEET_EXTRA.items()},
}

# --- decoding views --------------------------------------------------------------------------

_ESCAPES = re.compile(
    r"(?:%[0-9A-Fa-f]{2})+|&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?"
)
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def decode_escapes(text: str) -> tuple[str, list[tuple[int, int]]] | None:
    """(text with HTML entities and percent-escapes decoded, the original span of each decoded
    character), or None when nothing decodes. A bad escape stays as it is."""
    if "%" not in text and "&" not in text:
        return None
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    changed = False
    for m in _ESCAPES.finditer(text):
        a, b = m.span()
        piece = m.group()
        decoded = (
            unquote(piece, errors="replace")
            if piece[0] == "%"
            else html.unescape(piece)
        )
        if decoded == piece:
            continue
        changed = True
        for k in range(pos, a):
            out.append(text[k])
            spans.append((k, k + 1))
        out.append(decoded)
        spans.extend([(a, b)] * len(decoded))
        pos = b
    if not changed:
        return None
    for k in range(pos, len(text)):
        out.append(text[k])
        spans.append((k, k + 1))
    return "".join(out), spans


def display_order(text: str) -> str | None:
    """The text in the order it is displayed (Unicode bidirectional algorithm), when it holds
    explicit direction controls (an override can show "onisac" as "casino"); else None."""
    if not _BIDI_CONTROLS.search(text):
        return None
    shown = get_display(text)
    return shown if shown != text else None
