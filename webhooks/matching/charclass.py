"""Fast membership tests for large sets of characters (folding and normalisation use them)."""

from __future__ import annotations

import re
import sys

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def ranges_class(codepoints: list[int]) -> str:
    ranges: list[tuple[int, int]] = []
    for cp in codepoints:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


class CharClass:
    """A set of code points with a fast ``search``: the stdlib compiles a class of BMP
    characters to a bitmap (one lookup per character) but keeps astral ones as a list of
    ranges tested one by one, so the astral part is only searched when the text has an
    astral character."""

    __slots__ = ("_bmp", "_astral")

    def __init__(self, codepoints: list[int]) -> None:
        bmp = [cp for cp in codepoints if cp < 0x10000]
        astral = [cp for cp in codepoints if cp >= 0x10000]
        self._bmp = re.compile("[" + ranges_class(bmp) + "]") if bmp else None
        self._astral = re.compile("[" + ranges_class(astral) + "]") if astral else None

    def search(self, text: str) -> bool:
        if self._bmp is not None and self._bmp.search(text) is not None:
            return True
        return (
            self._astral is not None
            and has_astral(text)
            and self._astral.search(text) is not None
        )


def _has_astral_scan(text: str) -> bool:
    return _ASTRAL.search(text) is not None


# CPython stores a str in the narrowest of 1, 2 or 4 bytes per character that holds its
# widest character, so a str holds a character outside the Basic Multilingual Plane
# exactly when it is stored 4 bytes wide, which its size tells without reading it: size
# = header + 4 x (length + 1) then, and never for a narrower str of any length.
_WIDE_HEADER = sys.getsizeof("\U00010000") - 4


def _has_astral_by_size(text: str) -> bool:
    return sys.getsizeof(text) - 4 * len(text) == _WIDE_HEADER


def _size_tells() -> bool:
    samples = [
        "",
        "a",
        "\xe9",
        "\u4e00" * 3,
        "a\U0001d41a",
        "\U0001f600" * 5,
        "\uffff" * 9,
    ]
    return all(_has_astral_by_size(t) == _has_astral_scan(t) for t in samples)


# True when text has a character outside the Basic Multilingual Plane (emoji, math): one
# look at its size (0.3 against 1.2 µs for 170 characters, and run several times per
# text), or the scan where this interpreter stores strings otherwise.
has_astral = _has_astral_by_size if _size_tells() else _has_astral_scan
