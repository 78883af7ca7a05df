"""Reading the send log: one filter, keyset paging, and one export format.

The list page, the CSV download and the ``auditlog export`` command all go through
``filter_send_log`` and ``EXPORT_COLUMNS``, so a filter means the same thing, and an
export has the same columns, wherever it comes from.

Paging is keyset paging on (created_at, id), newest first: a page is "the next N
rows older than this row", which an index on (…, created_at, id) answers by reading
N rows, however deep the page. There is no COUNT and no OFFSET anywhere here.
"""

from __future__ import annotations

import codecs
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F, Func, Q, QuerySet, TextField
from django.db.models.functions import Cast

from liveadmin.csv_export import SqlGuard, csv_stream
from messaging.models import Outcome, ProviderApp, SendRecord
from messaging.providers import explain, explain_drop
from messaging.services.audit_chain import CHAIN_COLUMNS, CHAIN_KEYS, chain_values

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXPORT_CHUNK_SIZE = 2000
FIRST_CHUNK_SIZE = 100


@dataclass(frozen=True)
class LogFilter:
    """What to show. Empty values mean "any"; ``until`` is exclusive."""

    app: ProviderApp | None = None
    kind: str = ""
    outcome: str = ""
    error_code: int | None = None
    room: str = ""
    sender: str = ""
    user_id: int | None = None
    request_id: str = ""
    msg_seq: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def filter_send_log(queryset: QuerySet[SendRecord], f: LogFilter) -> QuerySet:
    """Narrow ``queryset`` (already limited to what the user may see) to ``f``.

    Every condition is an equality or a range on an indexed column, so each one
    can drive an index scan in (created_at, id) order (see SendRecord.Meta.indexes).
    """
    conditions: dict[str, Any] = {}
    if f.app is not None:
        conditions["app"] = f.app
    if f.kind:
        conditions["kind"] = f.kind
    if f.outcome:
        conditions["outcome"] = f.outcome
    if f.error_code is not None:
        conditions["error_code"] = f.error_code
    if f.room:
        conditions["room_id"] = f.room
    if f.sender:
        conditions["sender"] = f.sender
    if f.user_id is not None:
        conditions["user_id"] = f.user_id
    if f.request_id:
        conditions["request_id"] = f.request_id
    if f.msg_seq is not None:
        conditions["msg_seq"] = f.msg_seq
    if f.since is not None:
        conditions["created_at__gte"] = f.since
    if f.until is not None:
        conditions["created_at__lt"] = f.until
    return queryset.filter(**conditions)


# --- keyset cursors -------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """The (created_at, id) key of one row, as it travels in a URL."""

    created_at: datetime
    id: int

    @classmethod
    def of(cls, record: SendRecord) -> Cursor:
        return cls(record.created_at, record.pk)

    def encode(self) -> str:
        # Integer microseconds keep the URL short and free of "+" and ":".
        micros = (self.created_at - EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{self.id}"

    @classmethod
    def decode(cls, raw: str) -> Cursor:
        """Parse ``encode``'s output; ValueError on anything else."""
        micros, _, pk = raw.partition(".")
        if not micros.lstrip("-").isdigit() or not pk.isdigit():
            raise ValueError(f"not a paging cursor: {raw!r}")
        try:
            created_at = EPOCH + timedelta(microseconds=int(micros))
        except OverflowError:
            raise ValueError(f"not a paging cursor: {raw!r}") from None
        return cls(created_at, int(pk))


def older_than(queryset: QuerySet, cursor: Cursor) -> QuerySet:
    """Rows after ``cursor`` in newest-first order.

    (created_at, id) < (t, i), written so that every database can use the
    index: the redundant ``created_at <= t`` becomes the index bound, and the OR
    only settles ties on t.
    """
    return queryset.filter(created_at__lte=cursor.created_at).filter(
        Q(created_at__lt=cursor.created_at)
        | Q(created_at=cursor.created_at, id__lt=cursor.id)
    )


def newer_than(queryset: QuerySet, cursor: Cursor) -> QuerySet:
    return queryset.filter(created_at__gte=cursor.created_at).filter(
        Q(created_at__gt=cursor.created_at)
        | Q(created_at=cursor.created_at, id__gt=cursor.id)
    )


def with_names(queryset: QuerySet) -> QuerySet:
    """Join the app and user for their names, without their secrets: decrypting
    each row's app secret would cost more than the whole query.
    """
    return queryset.select_related("app", "user").defer(
        "app__secret_key", "app__webhook_token", "user__password"
    )


NEWEST_FIRST = ("-created_at", "-id")
OLDEST_FIRST = ("created_at", "id")


@dataclass(frozen=True)
class LogPage:
    records: list[SendRecord]
    # Cursors for the neighbouring pages; None when there is none.
    older: Cursor | None
    newer: Cursor | None


def page_send_log(
    queryset: QuerySet,
    *,
    after: Cursor | None = None,
    before: Cursor | None = None,
    size: int = PAGE_SIZE,
) -> LogPage:
    """One page of ``queryset``, newest first, reading at most size + 1 rows.

    ``after`` asks for the page of rows older than that row, ``before`` for the
    page of rows newer than it. Rows are never deleted, so the row a cursor was
    taken from still exists and the page we came from is still there.
    """
    queryset = with_names(queryset)
    if before is not None:
        rows = list(newer_than(queryset, before).order_by(*OLDEST_FIRST)[: size + 1])
        has_newer = len(rows) > size
        records = rows[:size][::-1]
        has_older = True
    else:
        if after is not None:
            queryset = older_than(queryset, after)
        rows = list(queryset.order_by(*NEWEST_FIRST)[: size + 1])
        records = rows[:size]
        has_older = len(rows) > size
        has_newer = after is not None
    return LogPage(
        records=records,
        older=Cursor.of(records[-1]) if records and has_older else None,
        newer=Cursor.of(records[0]) if records and has_newer else None,
    )


def iterate_send_log(
    queryset: QuerySet, *, chunk_size: int = EXPORT_CHUNK_SIZE
) -> Iterator[SendRecord]:
    """Every row of ``queryset``, newest first, in keyset chunks.

    Memory stays constant whatever the size: each chunk is one indexed query of
    at most ``chunk_size`` rows, read through a server-side cursor where the
    database has one. Rows written while the export runs are newer than its
    first row, so they are not mixed into it. Apps and users are few: they are
    read once and attached, instead of joined and built again for every row.
    """
    queryset = queryset.select_related(None).order_by(*NEWEST_FIRST)
    apps: dict[int, ProviderApp] = {}
    users: dict[int, Any] = {}
    cursor: Cursor | None = None
    # A small first chunk gets the first rows to the client quickly.
    size = min(FIRST_CHUNK_SIZE, chunk_size)
    while True:
        chunk = queryset if cursor is None else older_than(queryset, cursor)
        records = list(chunk[:size].iterator(chunk_size=size))
        if missing := {r.app_id for r in records} - apps.keys():
            apps.update(
                ProviderApp.objects.defer("secret_key", "webhook_token").in_bulk(
                    list(missing)
                )
            )
        if missing := {r.user_id for r in records} - users.keys():
            users.update(
                get_user_model().objects.defer("password").in_bulk(list(missing))
            )
        for record in records:
            record.app = apps[record.app_id]
            record.user = users[record.user_id]
            yield record
        if len(records) < size:
            return
        cursor = Cursor.of(records[-1])
        size = chunk_size


# --- display -------------------------------------------------------------------


def explain_error(record: SendRecord) -> str:
    """The provider's meaning of the record's ErrorCode, for people; without a code,
    LiveAdmin's own stored ErrorInfo in the reader's language (when it differs)."""
    if record.error_code in (None, 0):
        text = record.error_info_text
        return text if text != record.error_info else ""
    return explain(record.app.provider, record.error_code)


def explain_drop_reason(record: SendRecord) -> str:
    """Why an accepted send did not reach the room (MsgDropReason)."""
    if record.outcome != Outcome.DROPPED and not record.drop_reason:
        return ""
    return explain_drop(record.app.provider, record.drop_reason)


def msg_time_as_datetime(value: int | None) -> datetime | None:
    # MsgTime is the provider's Unix time in seconds.
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def pretty_json(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


# --- export format --------------------------------------------------------------

# The export's columns: the chained values (CHAIN_KEYS, exactly as the hash chain
# reads them), with the user's and app's names, and the send's link in the chain.
EXPORT_HEADER = [
    "id",
    "created_at",
    "user",
    "app",
    "kind",
    "room",
    "sender",
    "outcome",
    "action_status",
    "error_code",
    "error_info",
    "request_id",
    "msg_seq",
    "msg_time",
    "drop_reason",
    "http_status",
    "latency_ms",
    "attempts",
    "random",
    "request_body",
    "response_body",
    "user_id",
    "app_id",
    "batch_id",
    "retryable",
    "chain_seq",
    "chain_hash",
]
_EXTRA = ["user", "app", "chain_seq", "chain_hash"]
# Where each export column comes from in chain_values(row) + the _EXTRA values.
_SOURCE = [(CHAIN_KEYS + _EXTRA).index(name) for name in EXPORT_HEADER]
_EXPORT_FIELDS = [*CHAIN_COLUMNS, "link__seq", "link__digest"]
_ID, _CREATED, _USER, _APP = (
    CHAIN_COLUMNS.index(c) for c in ("id", "created_at", "user_id", "app_id")
)


def export_rows(
    queryset: QuerySet[SendRecord],
    *,
    chunk_size: int = EXPORT_CHUNK_SIZE,
    json_as_text: bool = False,
) -> Iterator[tuple[Any, ...]]:
    """Every row of ``queryset`` as export values (EXPORT_HEADER order), newest first.

    Memory stays constant whatever the size: keyset chunks of at most
    ``chunk_size`` rows, read as tuples (no model instances). Rows written while
    the export runs are newer than its first row, so they are not mixed into it.
    Apps and users are few: their names are read once. ``json_as_text`` leaves the
    request and response bodies as the database's JSON text (for CSV cells),
    instead of decoding them to be encoded again.
    """
    queryset = queryset.select_related(None).order_by(*NEWEST_FIRST)
    fields: list[Any] = list(_EXPORT_FIELDS)
    if json_as_text:
        for name in ("request_body", "response_body"):
            fields[fields.index(name)] = Cast(name, output_field=TextField())
    apps: dict[int, str] = {}
    users: dict[int, str] = {}
    user_model = get_user_model()
    pick = itemgetter(*_SOURCE)
    cursor: Cursor | None = None
    size = min(FIRST_CHUNK_SIZE, chunk_size)
    while True:
        chunk = queryset if cursor is None else older_than(queryset, cursor)
        rows = list(chunk.values_list(*fields)[:size])
        if missing := {r[_APP] for r in rows} - apps.keys():
            apps.update(
                ProviderApp.objects.filter(pk__in=missing).values_list("pk", "name")
            )
        if missing := {r[_USER] for r in rows} - users.keys():
            users.update(
                user_model.objects.filter(pk__in=missing).values_list(
                    "pk", user_model.USERNAME_FIELD
                )
            )
        for row in rows:
            values = chain_values(row[:-2])
            values += (users[row[_USER]], apps[row[_APP]], row[-2], row[-1])
            yield pick(values)
        if len(rows) < size:
            return
        cursor = Cursor(rows[-1][_CREATED], rows[-1][_ID])
        size = chunk_size


def export_values(row: Sequence[Any]) -> dict[str, Any]:
    """One export row as the JSON object of the JSONL export."""
    return dict(zip(EXPORT_HEADER, row, strict=True))


@dataclass
class ExportCount:
    """How many rows an export wrote, known once it has finished."""

    rows: int = 0


def csv_lines(
    queryset: QuerySet[SendRecord], count: ExportCount | None = None
) -> Iterator[str]:
    """The header line, then one guarded CSV line per row (LF line endings).

    On PostgreSQL the database writes the rows (COPY); elsewhere Python does, with
    the same columns, values and guard.
    """
    count = count if count is not None else ExportCount()
    yield from csv_stream(EXPORT_HEADER, (), lineterminator="\n")
    if connection.vendor == "postgresql":
        yield from _postgres_csv_rows(queryset, count)
        return
    rows = export_rows(queryset, json_as_text=True)
    for line in csv_stream(EXPORT_HEADER, rows, lineterminator="\n", header_line=False):
        count.rows += 1
        yield line


def jsonl_lines(
    queryset: QuerySet[SendRecord], count: ExportCount | None = None
) -> Iterator[str]:
    """One JSON object per row: every chained value, so the chain can be checked."""
    count = count if count is not None else ExportCount()
    for row in export_rows(queryset):
        count.rows += 1
        yield json.dumps(export_values(row), ensure_ascii=False) + "\n"


# --- CSV written by PostgreSQL ------------------------------------------------------


class _IsoUtc(Func):
    """A timestamptz as Python's ``isoformat()`` in UTC writes it."""

    template = (
        "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
        "CASE WHEN to_char(%(expressions)s, 'US') = '000000' THEN '' "
        "ELSE '.' || to_char(%(expressions)s, 'US') END || '+00:00'"
    )
    output_field = TextField()


class _UnixIsoUtc(Func):
    """Unix seconds (MsgTime) as an ISO 8601 time in UTC."""

    template = (
        "to_char(to_timestamp(%(expressions)s) AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00'"
    )
    output_field = TextField()


class _TrueFalse(Func):
    template = "CASE WHEN %(expressions)s THEN 'true' ELSE 'false' END"
    output_field = TextField()


def _text(name: str) -> Func:
    return SqlGuard(F(name))


# EXPORT_HEADER's columns as SQL, with the same values and guard as the Python path.
_SQL_COLUMNS: dict[str, Any] = {
    "id": F("id"),
    "created_at": _IsoUtc(F("created_at")),
    "user": _text("user__username"),
    "app": _text("app__name"),
    "kind": _text("kind"),
    "room": _text("room_id"),
    "sender": _text("sender"),
    "outcome": _text("outcome"),
    "action_status": _text("action_status"),
    "error_code": F("error_code"),
    "error_info": _text("error_info"),
    "request_id": _text("request_id"),
    "msg_seq": F("msg_seq"),
    "msg_time": _UnixIsoUtc(F("msg_time")),
    "drop_reason": _text("drop_reason"),
    "http_status": F("http_status"),
    "latency_ms": F("latency_ms"),
    "attempts": F("attempts"),
    "random": F("random"),
    "request_body": SqlGuard(Cast("request_body", output_field=TextField())),
    "response_body": SqlGuard(Cast("response_body", output_field=TextField())),
    "user_id": F("user_id"),
    "app_id": F("app_id"),
    "batch_id": F("batch_id"),
    "retryable": _TrueFalse(F("retryable")),
    "chain_seq": F("link__seq"),
    "chain_hash": F("link__digest"),
}


def _postgres_csv_rows(
    queryset: QuerySet[SendRecord], count: ExportCount
) -> Iterator[str]:
    """The rows as CSV text written by PostgreSQL (COPY ... TO STDOUT), newest first.

    The database formats and streams them; Python passes blocks on, so memory
    stays constant and the export runs at the speed of the index scan.
    """
    queryset = queryset.select_related(None).order_by(*NEWEST_FIRST)
    rows = queryset.values_list(*(_SQL_COLUMNS[name] for name in EXPORT_HEADER))
    sql, params = rows.query.sql_with_params()
    decode = codecs.getincrementaldecoder("utf-8")().decode
    with connection.cursor() as cursor:
        raw = cursor.cursor
        # Without a LIMIT the planner would sort the whole log before the first row
        # leaves; the (…, created_at, id) indexes already hold this order.
        raw.execute("SET enable_sort = off")
        try:
            copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"
            with raw.copy(copy_sql, params) as copy:
                for block in copy:
                    yield decode(bytes(block))
            count.rows = raw.rowcount
        finally:
            raw.execute("RESET enable_sort")
    yield decode(b"", final=True)
