"""What the matcher reads in a text, shown to people ("Try a message")."""

from __future__ import annotations

from webhooks.matching.fold import FOLD, FOLDABLE, LEET, decode_escapes, display_order
from webhooks.matching.normalise import NormText


def readings(text: str) -> dict[str, str]:
    """What the matcher reads in text, for people ("Try a message"): the folded form every
    entry sees by default, the exact form (entries marked exact), the leet form (entries
    marked leet), and, when the text has them, the decoded and the displayed order."""
    norm = NormText(text)
    out = {
        "folded": norm.derive(FOLD, trigger=FOLDABLE).light,
        "exact": norm.light,
        "leet": norm.derive(LEET, ascii_too=True).light,
    }
    decoded = decode_escapes(text)
    if decoded is not None:
        out["decoded"] = NormText(decoded[0]).derive(FOLD).light
    shown = display_order(text)
    if shown is not None:
        out["displayed"] = NormText(shown).derive(FOLD).light
    return out
