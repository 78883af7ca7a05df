"""Reading a webhook call's query and body within the size cap.

``read_body`` reads a WSGI environ (webhooks/wsgi.py and the Django view), so both read
chunked bodies (no Content-Length) the same way, up to the cap and no further; the
asynchronous entry points (webhooks/asgi.py, webhooks/rsgi.py) read their own streams
and check a declared length with ``declared_length``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

_READ_SIZE = 64 * 1024


class BodyRefused(Exception):
    """The body is not read (hotpath.body_refused answers it)."""


class TooLarge(BodyRefused):
    """The body is over the cap (refused without reading the rest)."""


class BadLength(BodyRefused):
    """Content-Length is not a plain number."""


def declared_length(raw: str, limit: int) -> int:
    """Content-Length as a number. Raises BadLength when it is not ASCII digits (at
    most 18 of them), TooLarge past ``limit``."""
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise BadLength(raw)
    length = int(raw)
    if length > limit:
        raise TooLarge
    return length


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The whole request body. Raises TooLarge past ``limit`` bytes, BadLength when
    Content-Length is not ASCII digits.

    With a Content-Length, exactly that many bytes are read. Without one, a chunked
    body is read to its end (the server decodes the chunks), at most limit + 1 bytes,
    so a client cannot make us buffer more than the cap."""
    stream = environ["wsgi.input"]
    raw_length = str(environ.get("CONTENT_LENGTH") or "").strip()
    if raw_length:
        length = declared_length(raw_length, limit)
        return stream.read(length) if length else b""
    if "chunked" not in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
        return b""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(min(_READ_SIZE, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise TooLarge
    return b"".join(chunks)


def parse_query(query_string: str) -> dict[str, str]:
    """The query parameters; like Django's QueryDict.get, the last value of a repeated one.
    Undecodable percent-escapes become U+FFFD rather than an error.

    What ``parse_qsl(query_string, keep_blank_values=True, errors="replace")`` gives
    (a property test holds them equal), a few times faster: the provider's query has
    no escapes, so most fields are split and kept as they stand."""
    out: dict[str, str] = {}
    for field in query_string.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "%" in field or "+" in field:
            name = unquote(name.replace("+", " "), errors="replace")
            value = unquote(value.replace("+", " "), errors="replace")
        out[name] = value
    return out
