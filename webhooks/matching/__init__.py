"""Compiled blocklist matcher for the before-send webhook.

Pure Python (no Django import) so the webhook view, the "try a message" page, the ``blocklist test``
command and the benchmarks can all share one implementation. A :class:`RuleSet` is compiled once per
blocklist change and then only read, so one instance can serve every request (and thread) of a process.

Matching model (documented for moderators; the webhook helper links here):

* Every string a room may show is inspected (message.py): every string value of every element's
  ``MsgContent``, whatever the ``MsgType``, and ``CloudCustomData``. A string that is a JSON object or
  array (``send_custom_msg`` wraps ``{"BusinessId": ..., "Data": ...}`` into ``Data``; ``ExtensionInfo``
  arrives as ``CloudCustomData``) is parsed and each key and string value inside it is inspected on its
  own, at any depth, so a hit is reported as e.g. ``MsgBody[0].Data.Data`` (a key as
  ``MsgBody[0].Data.casino:key``) and masking re-serialises valid JSON. The plain string fields of
  consecutive elements and ``CloudCustomData`` are also read joined, so a word split across them is
  caught (and masked in every field it touches). Unreadable parts are skipped, never raised on.
* Folding (fold.py), by default for every entry: accents and other marks removed after NFD, look-alike
  letters of other scripts mapped to the Latin letter (Unicode TR39 confusables from
  ``confusable-homoglyphs``, plus small capitals and letters with strokes by their Unicode names), text
  under right-to-left overrides also read in displayed order (python-bidi), HTML entities and
  percent-escapes also read decoded. An entry marked *exact* opts out of accent and look-alike folding;
  an entry marked *leet* also reads ``0 o, 1 i l, 3 e, 4 a, 5 s, 7 t, @ a, $ s``. CJK is never folded.
* Normalisation sees through simple evasion: the text is NFKC-normalised (full-width and half-width
  forms, ligatures, circled and mathematical letters; a letter and its combining marks compose first)
  and case-folded; zero-width and other format characters (ZWSP, ZWJ, word joiner, BOM, soft hyphen,
  bidi controls, tags), variation selectors, Hangul fillers and stacked diacritics ("zalgo") are
  removed. Accents that compose into a letter are kept in this light form (an exact entry sees it:
  "bád" is not "bad"); folding then removes them for the other entries. Hits and masks are mapped back
  to the original characters (a full-width or zero-width-split word is masked whole; a hit in displayed
  order masks its whole field).
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

Compiled: ``make setup`` compiles these modules to C with mypyc (webhooks/compiled.py);
the build is used only while it matches the sources, and ``COMPILED`` says whether this
process runs it.
"""

from webhooks import compiled as _compiled

# Before any other module of the package is imported: they are looked up in the build first.
COMPILED = _compiled.use_if_current(__name__, __path__)

from webhooks.matching.fold import FOLD, LEET  # noqa: E402
from webhooks.matching.message import (  # noqa: E402
    DOCUMENTED_STRINGS,
    MAX_JSON_DEPTH,
    iter_texts,
    joinable_texts,
    mask_message,
)
from webhooks.matching.normalise import NormText, normalise  # noqa: E402
from webhooks.matching.readings import readings  # noqa: E402
from webhooks.matching.regex_safety import (  # noqa: E402
    MAX_REGEX_LENGTH,
    REGEX_BUDGET,
    REGEX_TIMEOUT,
    compile_regex_or_error,
    fold_pattern,
    required_literal,
    required_literals,
)
from webhooks.matching.ruleset import FLOOD_MATCHES, MAX_WILDCARD_GAP, RuleSet  # noqa: E402
from webhooks.matching.verdict import ALLOW, Hit, Rule, Verdict  # noqa: E402
from webhooks.vocabulary import ACTIONS, FORBID_CODE_MAX, FORBID_CODE_MIN, KINDS  # noqa: E402

__all__ = [
    "ACTIONS",
    "ALLOW",
    "DOCUMENTED_STRINGS",
    "FLOOD_MATCHES",
    "FORBID_CODE_MAX",
    "FORBID_CODE_MIN",
    "KINDS",
    "MAX_JSON_DEPTH",
    "MAX_REGEX_LENGTH",
    "MAX_WILDCARD_GAP",
    "REGEX_BUDGET",
    "REGEX_TIMEOUT",
    "Hit",
    "NormText",
    "Rule",
    "RuleSet",
    "Verdict",
    "compile_regex_or_error",
    "fold_pattern",
    "iter_texts",
    "readings",
    "FOLD",
    "LEET",
    "joinable_texts",
    "mask_message",
    "normalise",
    "required_literal",
    "required_literals",
]
