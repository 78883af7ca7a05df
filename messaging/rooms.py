"""Room lists and room IDs: the one place that parses a list of rooms and knows the
room-ID limits.

The send form (pasted text and uploaded TXT/CSV files), the ``sendmsg
--rooms-file`` command and the provider clients' request checks all use this
module, so a room list means the same thing wherever it comes from. It imports
nothing of Django but its translation functions (its messages are read by people),
and nothing of the rest of messaging.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# At most this many rooms in one batch.
MAX_ROOMS = 10_000
# An uploaded room list; 10,000 room IDs fit in far less.
MAX_ROOMS_FILE_BYTES = 2 * 1024 * 1024

# Room-ID limits per provider, in UTF-8 bytes. Tencent: a live room is a custom
# group ID of at most 48 bytes of printable ASCII (PROVIDERS.md 1.4). ZEGO: room IDs
# up to 128 bytes (Express SDK; the server API pages give none of their own).
MAX_ROOM_ID_BYTES: dict[str, int] = {"tencent": 48, "zego": 128}
# When the provider is not known yet (a list parsed before an app is chosen).
LONGEST_ROOM_ID_BYTES = max(MAX_ROOM_ID_BYTES.values())

# A first line that names the column instead of being a room.
HEADER_NAMES = frozenset({"room", "rooms", "roomid", "groupid"})

NOT_PRINTABLE = gettext_lazy("A room ID uses printable ASCII characters only.")
HAS_SPACE = gettext_lazy(
    "room IDs are printable ASCII without spaces (one room per line)"
)


def room_id_error(room_id: str, provider: str | None = None) -> str | None:
    """Why ``room_id`` cannot be a room of ``provider`` (None when it can).

    Printable ASCII within the provider's byte limit. An empty ID is the caller's
    case (a form says "Enter the room ID.", a list skips blank lines).
    """
    limit = MAX_ROOM_ID_BYTES.get(provider or "", LONGEST_ROOM_ID_BYTES)
    if len(room_id.encode()) > limit:
        return _("A room ID is at most %(limit)s bytes.") % {"limit": limit}
    if not all(32 <= ord(ch) < 127 for ch in room_id):
        return str(NOT_PRINTABLE)
    return None


def _list_entry_error(room: str, provider: str | None) -> str | None:
    # A space inside one line of a list is far more often two IDs pasted on one
    # line than a real room ID, so lists refuse it (a single room field does not).
    if not all(33 <= ord(ch) <= 126 for ch in room):
        return str(HAS_SPACE)
    return room_id_error(room, provider)


def is_header(cell: str) -> bool:
    return cell.lower().replace("_", "").replace(" ", "") in HEADER_NAMES


@dataclass
class RoomList:
    """Room IDs parsed from pasted text or uploaded CSV/TXT files."""

    rooms: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    blank_lines: int = 0
    invalid: list[tuple[str, str]] = field(default_factory=list)

    @property
    def too_many(self) -> bool:
        return len(self.rooms) > MAX_ROOMS


def parse_room_ids(*texts: str, provider: str | None = None) -> RoomList:
    """One room ID per line; for CSV input the first column.

    Each text (the pasted list, an uploaded file) may start with a header row
    ("room_id", "RoomId", "GroupId", ...), which is skipped. Keeps the first
    occurrence of each room in order and reports duplicates, blank lines and
    invalid IDs, so the caller can tell the user what was removed. More than
    MAX_ROOMS rooms is reported through ``too_many`` (the caller rejects it).
    """
    result = RoomList()
    seen: set[str] = set()
    reported: set[str] = set()
    for text in texts:
        for index, line in enumerate(text.lstrip("\ufeff").splitlines()):
            row = next(csv.reader([line]), [])
            room = row[0].strip() if row else ""
            if not room:
                result.blank_lines += 1
                continue
            if index == 0 and is_header(room):
                continue
            error = _list_entry_error(room, provider)
            if error:
                result.invalid.append((room, error))
                continue
            if room in seen:
                if room not in reported:
                    result.duplicates.append(room)
                    reported.add(room)
                continue
            seen.add(room)
            result.rooms.append(room)
    return result


def decode_room_file(raw: bytes) -> str:
    """The text of an uploaded room list (UTF-8, an optional BOM). Raises ValueError
    with a message for the user."""
    if len(raw) > MAX_ROOMS_FILE_BYTES:
        raise ValueError(
            _("The file is larger than 2 MB; 10,000 room IDs fit in far less.")
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(_("The file must be UTF-8 text (TXT or CSV).")) from None
