"""The webhook decision log (CSV or JSON lines) and the blocklist change history
(CSV), streamed in constant memory.

Keyset chunks on (created_at, id), newest first, read as tuples; CSV cells go
through the one formula guard (liveadmin.csv_export).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.db.models import Q, QuerySet

from liveadmin.csv_export import csv_stream
from messaging.models import ProviderApp
from messaging.services.audit_chain import iso

CHUNK = 2000
DECISION_HEADER = [
    "id",
    "created_at",
    "app",
    "room",
    "sender",
    "action",
    "error_code",
    "entry_ids",
    "text",
    "original",
    "response",
]
_FIELDS = [
    "id",
    "created_at",
    "app_id",
    "room_id",
    "sender",
    "action",
    "error_code",
    "entry_ids",
    "text",
    "original",
    "response",
]


CHANGE_HEADER = [
    "id",
    "created_at",
    "actor",
    "object_type",
    "object_id",
    "action",
    "before",
    "after",
]
_CHANGE_FIELDS = [
    "id",
    "created_at",
    "actor_name",
    "object_type",
    "object_id",
    "action",
    "before",
    "after",
]


def _newest_first(queryset: QuerySet, fields: list[str]) -> Iterator[tuple[Any, ...]]:
    """Rows of ``fields`` (id and created_at first), newest first, keyset chunks."""
    queryset = queryset.select_related(None).order_by("-created_at", "-id")
    last: tuple[Any, int] | None = None
    while True:
        chunk = queryset
        if last is not None:
            chunk = queryset.filter(created_at__lte=last[0]).filter(
                Q(created_at__lt=last[0]) | Q(created_at=last[0], id__lt=last[1])
            )
        rows = list(chunk.values_list(*fields)[:CHUNK])
        yield from rows
        if len(rows) < CHUNK:
            return
        last = (rows[-1][1], rows[-1][0])


def decision_rows(queryset: QuerySet) -> Iterator[list[Any]]:
    """Every decision of ``queryset`` as export values, newest first."""
    apps: dict[int, str] = {}
    for row in _newest_first(queryset, _FIELDS):
        if row[2] not in apps:
            apps.update(ProviderApp.objects.filter(pk=row[2]).values_list("pk", "name"))
        values = list(row)
        values[1] = iso(row[1])
        values[2] = apps.get(row[2], "")
        yield values


def change_csv(queryset: QuerySet) -> Iterator[str]:
    rows = (
        [row[0], iso(row[1]), *row[2:]]
        for row in _newest_first(queryset, _CHANGE_FIELDS)
    )
    return csv_stream(CHANGE_HEADER, rows)


def decision_csv(queryset: QuerySet) -> Iterator[str]:
    return csv_stream(DECISION_HEADER, decision_rows(queryset))


def decision_jsonl(queryset: QuerySet) -> Iterator[str]:
    for row in decision_rows(queryset):
        yield (
            json.dumps(dict(zip(DECISION_HEADER, row, strict=True)), ensure_ascii=False)
            + "\n"
        )
