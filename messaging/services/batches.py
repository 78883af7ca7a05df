"""Bulk sends: one message to many rooms, run in Celery tasks within the rate limits.

A batch stores the message fields once and one SendRecord per room, created up
front in ``waiting``; workers claim and send those rows. Progress is the count of
the batch's rows by outcome.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass, field

from messaging import ratelimit
from messaging.models import ProviderApp

logger = logging.getLogger(__name__)

MAX_ROOMS = 10_000
MAX_ROOM_ID_BYTES = 128
_HEADER_NAMES = {"room", "room_id", "roomid", "room id", "groupid", "group_id"}


@dataclass
class RoomList:
    """Room IDs parsed from a pasted list or an uploaded CSV/TXT file."""

    rooms: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    blank_lines: int = 0
    invalid: list[tuple[str, str]] = field(default_factory=list)

    @property
    def too_many(self) -> bool:
        return len(self.rooms) > MAX_ROOMS


def _room_error(room: str) -> str | None:
    if len(room.encode()) > MAX_ROOM_ID_BYTES:
        return f"longer than {MAX_ROOM_ID_BYTES} bytes"
    if not all(33 <= ord(ch) <= 126 for ch in room):
        return "room IDs are printable ASCII without spaces"
    return None


def parse_room_ids(text: str) -> RoomList:
    """One room ID per line; for CSV input the first column (a header row is skipped).

    Keeps the first occurrence of each room in order; reports duplicates, blank
    lines and invalid IDs so the form can tell the user what was removed. More
    than MAX_ROOMS rooms is reported through ``too_many`` (the caller rejects it).
    """
    result = RoomList()
    seen: set[str] = set()
    reported_duplicates: set[str] = set()
    lines = text.lstrip("\ufeff").splitlines()
    for index, row in enumerate(csv.reader(io.StringIO("\n".join(lines)))):
        room = row[0].strip() if row else ""
        if not room:
            result.blank_lines += 1
            continue
        if index == 0 and room.lower() in _HEADER_NAMES:
            continue
        error = _room_error(room)
        if error:
            result.invalid.append((room, error))
            continue
        if room in seen:
            if room not in reported_duplicates:
                result.duplicates.append(room)
                reported_duplicates.add(room)
            continue
        seen.add(room)
        result.rooms.append(room)
    return result


def estimate_seconds(app: ProviderApp, kind: str, count: int) -> float:
    """How long ``count`` sends take at the app's rate budget."""
    return count / ratelimit.rate_per_second(app, kind)


def describe_estimate(app: ProviderApp, kind: str, count: int) -> str:
    """E.g. "2,000 rooms at 200/s: about 10 s"."""
    rate = ratelimit.rate_per_second(app, kind)
    seconds = math.ceil(estimate_seconds(app, kind, count))
    duration = f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} min"
    return f"{count:,} rooms at {rate:g}/s: about {duration}"
