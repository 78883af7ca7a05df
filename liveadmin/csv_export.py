"""The one CSV writer every export uses (send log, blocklists, decisions, history).

A spreadsheet runs a cell that starts with ``= + - @``, a tab or a carriage return
as a formula (CSV injection: a room ID, sender or blocklist term like
``=HYPERLINK(...)`` is chosen by whoever types it). Such text cells get a leading
apostrophe, which spreadsheets show as text. A text cell that already starts with
an apostrophe gets one more, so ``csv_uncell`` restores every text exactly (the
blocklist import reads its own export back). Numbers are never prefixed: a
negative error code stays a number.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.db.models import Func, TextField

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_GUARDED = (*FORMULA_TRIGGERS, "'")


def csv_cell(value: Any) -> str:
    """One value as CSV text: guarded strings, JSON for objects, '' for None."""
    # Exact type checks first: this runs for every cell of every exported row.
    kind = type(value)
    if kind is str:
        return "'" + value if value.startswith(_GUARDED) else value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    return "'" + text if text.startswith(_GUARDED) else text


def csv_uncell(text: str) -> str:
    """The text ``csv_cell`` was given (for reading an export back in)."""
    return text[1:] if text.startswith("'") else text


class SqlGuard(Func):
    """``csv_cell``'s guard in SQL, for CSV that PostgreSQL writes itself (COPY):
    the same leading characters, the same apostrophe. For text expressions."""

    template = (
        "CASE WHEN left(%(expressions)s, 1) IN "
        "('=', '+', '-', '@', chr(9), chr(13), chr(39)) "
        "THEN chr(39) || %(expressions)s ELSE %(expressions)s END"
    )
    output_field = TextField()


class _Echo:
    """A file-like object whose write() returns the line, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def csv_stream(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    lineterminator: str = "\r\n",
    header_line: bool = True,
) -> Iterator[str]:
    """The header line, then one guarded CSV line per row (RFC 4180 by default)."""
    writer = csv.writer(_Echo(), lineterminator=lineterminator)
    write = writer.writerow
    if header_line:
        yield write(header)
    for row in rows:
        # csv_cell for every cell, skipped (same result, fewer calls) where the
        # writer's own rendering is already right: ints, None, safe text.
        yield write(
            [
                v
                if (kind := type(v)) is int
                or v is None
                or (kind is str and not v.startswith(_GUARDED))
                else csv_cell(v)
                for v in row
            ]
        )
