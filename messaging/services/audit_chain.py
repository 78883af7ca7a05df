"""The hash chain over final sends: linking, verifying, and the canonical form.

A send that becomes final is queued by the database (migration 0009) in the order
rows become final. ``link_final_sends`` takes the queue in that order and gives
each send the next link:

    digest(n) = SHA-256( digest(n-1) as 32 raw bytes  ||  canonical(send n) )

with digest(0) = 32 zero bytes. ``canonical`` is the UTF-8 JSON array of the
send's values under CHAIN_KEYS, in that order, as the JSONL export writes them
(compact separators, keys of nested objects sorted, non-ASCII kept). So an
export is enough to check the chain offline (README "Verifying an export").

Linking runs outside the send path (a periodic task, and before every verify), so
a send pays only for one queue row; one linker runs at a time.
``verify_chain`` walks the chain and names the first send that was changed,
removed, reordered or inserted out of band.
"""

from __future__ import annotations

import hashlib
import json
import json.scanner
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from messaging.models import (
    AuditPending,
    AuditVerification,
    Outcome,
    SendRecord,
)

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
LINK_BATCH = 2000
VERIFY_CHUNK = 5000
# pg_try_advisory_xact_lock key: one linker at a time across every process.
LINK_LOCK = 0x11A0D17

# (export / canonical key, database column), in canonical order.
CHAIN_FIELDS: list[tuple[str, str]] = [
    ("id", "id"),
    ("created_at", "created_at"),
    ("user_id", "user_id"),
    ("app_id", "app_id"),
    ("batch_id", "batch_id"),
    ("kind", "kind"),
    ("room", "room_id"),
    ("sender", "sender"),
    ("random", "random"),
    ("outcome", "outcome"),
    ("action_status", "action_status"),
    ("error_code", "error_code"),
    ("error_info", "error_info"),
    ("request_id", "request_id"),
    ("msg_seq", "msg_seq"),
    ("msg_time", "msg_time"),
    ("drop_reason", "drop_reason"),
    ("http_status", "http_status"),
    ("latency_ms", "latency_ms"),
    ("attempts", "attempts"),
    ("retryable", "retryable"),
    ("request_body", "request_body"),
    ("response_body", "response_body"),
]
CHAIN_KEYS = [key for key, _ in CHAIN_FIELDS]
CHAIN_COLUMNS = [column for _, column in CHAIN_FIELDS]
_CREATED_AT = CHAIN_COLUMNS.index("created_at")
_MSG_TIME = CHAIN_COLUMNS.index("msg_time")


def iso(value: datetime | None) -> str | None:
    """Times in exports and in the canonical form: ISO 8601 in UTC."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def msg_time_iso(value: int | None) -> str | None:
    # MsgTime is the provider's Unix time in seconds.
    return datetime.fromtimestamp(value, UTC).isoformat() if value is not None else None


def chain_values(row: Sequence[Any]) -> list[Any]:
    """A row of CHAIN_COLUMNS (as the ORM reads them) as its exported JSON values."""
    values = list(row)
    values[_CREATED_AT] = iso(values[_CREATED_AT])
    values[_MSG_TIME] = msg_time_iso(values[_MSG_TIME])
    return values


_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
# The C encoder that JSONEncoder.encode builds on every call, built once (the same
# output: same options, float repr, string escaping; no circular check, as the
# values come from the database).
_encode_chunks: Callable[[Any, int], Sequence[str]] = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None,
        _CANONICAL.default,
        json.encoder.encode_basestring,
        None,
        _CANONICAL.key_separator,
        _CANONICAL.item_separator,
        True,
        False,
        True,
    )
    if json.encoder.c_make_encoder is not None  # type: ignore[attr-defined]
    else None
) or (lambda values, _level: [_CANONICAL.encode(values)])


def canonical(values: list[Any]) -> bytes:
    return "".join(_encode_chunks(values, 0)).encode()


def next_digest(previous: str, values: list[Any]) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + canonical(values)).hexdigest()


def _take_link_lock() -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite serialises writers: linkers queue behind each other
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LINK_LOCK])
        return bool(cursor.fetchone()[0])


# The chained columns of a send, read with a plain cursor: no model instances and
# no per-field converters (reading dominates linking and verifying).
_COLUMNS_SQL = ", ".join(f"r.{column}" for column in CHAIN_COLUMNS)
_JSON = [CHAIN_COLUMNS.index("request_body"), CHAIN_COLUMNS.index("response_body")]
_RETRYABLE = CHAIN_COLUMNS.index("retryable")
_loads = json.loads


def _from_cursor(row: Sequence[Any]) -> list[Any]:
    """A cursor row of CHAIN_COLUMNS as the ORM would give it: JSON decoded (the
    backends hand it over as text), times aware (SQLite's are naive UTC), booleans."""
    values = list(row)
    for i in _JSON:
        if values[i] is not None:
            values[i] = _loads(values[i])
    created = values[_CREATED_AT]
    if type(created) is str:
        created = datetime.fromisoformat(created)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    values[_CREATED_AT] = created
    values[_RETRYABLE] = bool(values[_RETRYABLE])
    return values


def link_final_sends(*, batch: int = LINK_BATCH) -> int:
    """Link every queued final send, in the order they became final.

    Returns how many were linked. If another process is linking, returns at once
    (it links these too).
    """
    linked = 0
    select = (
        f"SELECT p.id, {_COLUMNS_SQL} FROM messaging_auditpending p"
        " JOIN messaging_sendrecord r ON r.id = p.record_id ORDER BY p.id LIMIT %s"
    )
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            if not _take_link_lock():
                return linked
            cursor.execute(select, [batch])
            queued = cursor.fetchall()
            if not queued:
                return linked
            cursor.execute(
                "SELECT seq, digest FROM messaging_auditlink ORDER BY seq DESC LIMIT 1"
            )
            seq, digest = cursor.fetchone() or (0, GENESIS)
            links = []
            for _pending_id, *columns in queued:
                values = _from_cursor(columns)
                seq += 1
                digest = next_digest(digest, chain_values(values))
                links.append((seq, values[0], digest))
            cursor.executemany(
                "INSERT INTO messaging_auditlink (seq, record_id, digest)"
                " VALUES (%s, %s, %s)",
                links,
            )
            ids = [row[0] for row in queued]
            AuditPending.objects.filter(id__in=ids).delete()
            linked += len(links)
        if len(queued) < batch:
            return linked


def _walk(
    rows: Iterable[Sequence[Any]], checkpoint: AuditVerification | None
) -> tuple[int, str, int, str, int | None]:
    """Check links in order. Returns (verified_to, head, rows, problem, record_id).

    ``rows``: (seq, digest, record_id, values) with the send's exported values.
    """
    seq, digest, count = 0, GENESIS, 0
    for link_seq, stored, record_id, values in rows:
        if link_seq != seq + 1:
            return (
                seq,
                digest,
                count,
                f"link #{seq + 1} is missing (the chain jumps to #{link_seq}, "
                f"send {record_id}): a send or its link was removed",
                record_id,
            )
        expected = next_digest(digest, values)
        if expected != stored:
            return (
                seq,
                digest,
                count,
                f"send {record_id} (link #{link_seq}) does not match its link: it was "
                "changed, or a send was inserted, removed or reordered at this point",
                record_id,
            )
        if (
            checkpoint is not None
            and link_seq == checkpoint.verified_to
            and stored != checkpoint.head
        ):
            return (
                seq,
                digest,
                count,
                f"link #{link_seq} differs from the one verified at "
                f"{checkpoint.checked_at.isoformat()}: the chain was rewritten",
                record_id,
            )
        seq, digest, count = link_seq, stored, count + 1
    return seq, digest, count, "", None


# On PostgreSQL the database writes the two times in their exported form (what
# ``iso`` and ``msg_time_iso`` give: UTC, ISO 8601, microseconds only when not zero),
# sparing Python two conversions a row; tests check both ways agree.
_ISO = 'YYYY-MM-DD"T"HH24:MI:SS'
_PG_TIMES = {
    "created_at": (
        "to_char(r.created_at AT TIME ZONE 'UTC', CASE WHEN"
        " extract(microseconds FROM r.created_at)::bigint %% 1000000 = 0"
        f""" THEN '{_ISO}"+00:00"' ELSE '{_ISO}.US"+00:00"' END)"""
    ),
    "msg_time": f"""to_char(to_timestamp(r.msg_time) AT TIME ZONE 'UTC', '{_ISO}"+00:00"')""",
}
_PG_COLUMNS_SQL = ", ".join(
    _PG_TIMES.get(column, f"r.{column}") for column in CHAIN_COLUMNS
)
# json.loads without its two Python-level wrappers (the C scanner itself).
_scan_json = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _exported_pg(row: Sequence[Any]) -> list[Any]:
    values = list(row)
    for i in _JSON:
        text = values[i]
        if text is not None:
            values[i] = _scan_json(text, 0)[0]
    return values


def _chain_rows(chunk: int) -> Iterator[tuple[int, str, int, list[Any]]]:
    """(seq, digest, record_id, exported values) in seq order, in keyset chunks.

    On PostgreSQL the next chunk is read by a second connection while this one's
    rows are hashed (the database's time overlaps Python's).
    """
    postgres = connection.vendor == "postgresql"
    # A second connection sees only what is committed: inside a transaction (a
    # test's), read here.
    ahead = postgres and not connection.in_atomic_block
    select = (
        f"SELECT l.seq, l.digest, l.record_id, "
        f"{_PG_COLUMNS_SQL if postgres else _COLUMNS_SQL}"
        " FROM messaging_auditlink l JOIN messaging_sendrecord r ON r.id = l.record_id"
        " WHERE l.seq > %s ORDER BY l.seq LIMIT %s"
    )
    chunks = _read_ahead(select, chunk) if ahead else _read_here(select, chunk)
    for rows in chunks:
        if postgres:
            for seq, digest, record_id, *columns in rows:
                yield seq, digest, record_id, _exported_pg(columns)
        else:
            for seq, digest, record_id, *columns in rows:
                yield seq, digest, record_id, chain_values(_from_cursor(columns))


def _read_here(select: str, chunk: int) -> Iterator[list[Sequence[Any]]]:
    after = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(select, [after, chunk])
            rows = cursor.fetchall()
        yield rows
        if len(rows) < chunk:
            return
        after = rows[-1][0]


def _read_ahead(select: str, chunk: int) -> Iterator[list[Sequence[Any]]]:
    """``_read_here`` in a thread of its own (its own connection), one chunk ahead."""
    chunks: queue.Queue[list[Sequence[Any]] | BaseException | None] = queue.Queue(1)
    stop = threading.Event()

    def read() -> None:
        try:
            for rows in _read_here(select, chunk):
                if stop.is_set():
                    return
                chunks.put(rows)
            chunks.put(None)
        except BaseException as error:  # handed to the reader, raised there
            chunks.put(error)
        finally:
            connection.close()

    reader = threading.Thread(target=read, name="audit-verify-read", daemon=True)
    reader.start()
    try:
        while (rows := chunks.get()) is not None:
            if isinstance(rows, BaseException):
                raise rows
            yield rows
    finally:
        stop.set()
        while reader.is_alive():  # let a blocked put() finish
            try:
                chunks.get_nowait()
            except queue.Empty:
                reader.join(0.05)


def _unlinked_final_send() -> tuple[str, int | None]:
    """A final send that is neither linked nor queued: written out of band."""
    with connection.cursor() as cursor:
        # One statement, one snapshot: a send moves from the queue to a link atomically.
        cursor.execute(
            "SELECT (SELECT count(*) FROM messaging_sendrecord WHERE outcome <> %s),"
            " (SELECT count(*) FROM messaging_auditlink),"
            " (SELECT count(*) FROM messaging_auditpending)",
            [Outcome.WAITING],
        )
        final, links, queued = cursor.fetchone()
    if final <= links + queued:
        return "", None
    first = (
        SendRecord.objects.exclude(outcome=Outcome.WAITING)
        .filter(link__isnull=True)
        .exclude(pk__in=AuditPending.objects.values("record_id"))
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    return (
        f"send {first} is final but not in the chain: it was inserted out of band",
        first,
    )


def verify_chain(
    *, link_first: bool = True, chunk: int = VERIFY_CHUNK
) -> AuditVerification:
    """Walk the whole chain and record the result (an AuditVerification row).

    Checks each link against its send, that links are numbered without gaps,
    that the chain still passes through the head the last good verification saw,
    and that every final send is linked or queued.
    """
    if link_first:
        link_final_sends()
    started = time.perf_counter()
    checkpoint = AuditVerification.objects.filter(ok=True).first()
    verified_to, head, rows, problem, record_id = _walk(_chain_rows(chunk), checkpoint)
    if not problem and checkpoint is not None and verified_to < checkpoint.verified_to:
        problem = (
            f"the chain ends at #{verified_to} but was verified to "
            f"#{checkpoint.verified_to} at {checkpoint.checked_at.isoformat()}: "
            "links were removed"
        )
    if not problem:
        problem, record_id = _unlinked_final_send()
    result = AuditVerification.objects.create(
        checked_at=timezone.now(),
        ok=not problem,
        verified_to=verified_to,
        head=head if verified_to else "",
        rows=rows,
        seconds=time.perf_counter() - started,
        problem=problem,
        problem_record_id=record_id,
    )
    if problem:
        logger.error("audit chain broken: %s", problem)
    else:
        logger.info("audit chain verified to #%s (%s rows)", verified_to, rows)
    return result


def latest_verification() -> AuditVerification | None:
    return AuditVerification.objects.first()
