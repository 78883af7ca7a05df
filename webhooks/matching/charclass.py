"""Fast membership tests for large sets of characters (folding and normalisation use them)."""

from __future__ import annotations

import re

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


def has_astral(text: str) -> bool:
    """True when text has a character outside the Basic Multilingual Plane (emoji, math)."""
    return _ASTRAL.search(text) is not None
