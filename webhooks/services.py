"""Blocklist actions. Views, commands and tests call these; each change is
recorded in BlocklistChange and bumps the rules version the webhook watches."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from liveadmin.csv_export import csv_stream, csv_uncell
from messaging.models import ProviderApp
from webhooks import hotpath, matching, rules_cache, version
from webhooks.models import (
    Blocklist,
    BlocklistChange,
    BlocklistEntry,
)
from webhooks.vocabulary import ACTIONS, FORBID_CODE_MAX, FORBID_CODE_MIN, KINDS

SHARED_LIST_NAME = "Shared blocklist"
MAX_TERM = 500


def _record(
    actor: Any,
    obj: Blocklist | BlocklistEntry,
    action: str,
    before: dict | None,
    after: dict | None,
) -> None:
    BlocklistChange.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=actor.get_username() if getattr(actor, "pk", None) else "manage.py",
        object_type="blocklist" if isinstance(obj, Blocklist) else "entry",
        object_id=obj.pk,
        action=action,
        before=before,
        after=after,
    )


# --- validation -------------------------------------------------------------------


def dedup_key(kind: str, term: str) -> tuple[str, str]:
    """Two terms that match the same messages count as duplicates."""
    return kind, BlocklistEntry.make_key(kind, term)


def clean_entry(
    *,
    kind: str,
    term: str,
    action: str,
    code: int | None = None,
    info: str = "",
    exact: bool = False,
    leet: bool = False,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Normalise an entry's fields; returns (clean values, errors by field)."""
    errors: dict[str, list[str]] = {}
    term = (term or "").strip()
    kind = (kind or "word").strip().lower()
    action = (action or "forbid").strip().lower()
    info = (info or "").strip()
    if kind not in KINDS:
        errors["kind"] = [
            gettext("Unknown kind %(kind)s: use one of %(kinds)s.")
            % {"kind": repr(kind), "kinds": ", ".join(KINDS)}
        ]
    if action not in ACTIONS:
        errors["action"] = [
            gettext("Unknown action %(action)s: use one of %(actions)s.")
            % {"action": repr(action), "actions": ", ".join(ACTIONS)}
        ]
    if not term:
        errors["term"] = [gettext("Enter a term.")]
    elif len(term) > MAX_TERM:
        errors["term"] = [
            gettext("A term has at most %(max)s characters.") % {"max": MAX_TERM}
        ]
    elif kind == "regex":
        problem = matching.compile_regex_or_error(term)
        if problem:
            errors["term"] = [
                gettext("Refused regular expression: %(problem)s")
                % {"problem": problem}
            ]
    elif kind == "wildcard" and not term.replace("*", "").strip():
        errors["term"] = [gettext("A wildcard pattern needs some text besides *.")]
    elif kind == "user" and any(c.isspace() for c in term):
        errors["term"] = [gettext("A user ID has no spaces.")]
    if code is not None and action != "forbid_code" and "action" not in errors:
        # A code given with a plain forbid means "forbid with my code".
        if action == "forbid":
            action = "forbid_code"
        else:
            errors["code"] = [gettext("A code only goes with “forbid”.")]
    if action == "forbid_code":
        if code is None:
            errors["code"] = [
                gettext("Enter a code between %(min)s and %(max)s.")
                % {"min": FORBID_CODE_MIN, "max": FORBID_CODE_MAX}
            ]
        elif not FORBID_CODE_MIN <= code <= FORBID_CODE_MAX:
            errors["code"] = [
                gettext(
                    "The code must be between %(min)s and %(max)s (documented range)."
                )
                % {"min": FORBID_CODE_MIN, "max": FORBID_CODE_MAX}
            ]
    else:
        code, info = None, ""
    if len(info) > 200:
        errors["info"] = [gettext("At most 200 characters.")]
    if kind in ("regex", "user"):
        # Regexes see the case-folded text and user IDs compare exactly: no folding applies.
        exact = leet = False
    elif exact and leet:
        errors["leet"] = [
            gettext(
                "An entry is either exact (no folding) or leet (more folding), not both."
            )
        ]
    return {
        "kind": kind,
        "term": term,
        "action": action,
        "code": code,
        "info": info,
        "exact": bool(exact),
        "leet": bool(leet),
    }, errors


# --- lists --------------------------------------------------------------------------


@transaction.atomic
def create_list(
    name: str, *, app: ProviderApp | None, note: str = "", actor: Any = None
) -> Blocklist:
    blocklist = Blocklist.objects.create(name=name.strip(), app=app, note=note)
    _record(actor, blocklist, "create", None, blocklist.snapshot())
    version.bump()
    return blocklist


@transaction.atomic
def update_list(blocklist: Blocklist, *, actor: Any = None, **fields: Any) -> Blocklist:
    before = Blocklist.objects.get(pk=blocklist.pk).snapshot()
    for name, value in fields.items():
        setattr(blocklist, name, value)
    blocklist.save()
    after = blocklist.snapshot()
    if after != before:
        action = "update"
        if set(fields) == {"enabled"}:
            action = "enable" if blocklist.enabled else "disable"
        _record(actor, blocklist, action, before, after)
        version.bump()
    return blocklist


@transaction.atomic
def delete_list(blocklist: Blocklist, *, actor: Any = None) -> None:
    before = blocklist.snapshot()
    before["entries"] = blocklist.entries.count()
    pk = blocklist.pk
    blocklist.delete()
    blocklist.pk = pk
    _record(actor, blocklist, "delete", before, None)
    version.bump()


def default_list(app: ProviderApp | None, *, actor: Any = None) -> Blocklist:
    """The list an app's command-line additions go to (created when missing)."""
    existing = Blocklist.objects.filter(app=app).order_by("id").first()
    if existing:
        return existing
    name = SHARED_LIST_NAME if app is None else f"{app.name} blocklist"
    return create_list(name, app=app, actor=actor)


# --- entries -----------------------------------------------------------------------


@transaction.atomic
def add_entry(
    blocklist: Blocklist,
    *,
    term: str,
    kind: str = "word",
    action: str = "forbid",
    code: int | None = None,
    info: str = "",
    expires_at: datetime | None = None,
    note: str = "",
    exact: bool = False,
    leet: bool = False,
    review: bool = False,
    actor: Any = None,
) -> BlocklistEntry:
    """Add one entry (``review``: also queue what it catches for review). Raises
    ValidationError (by field) on bad input or a duplicate. ``exact`` opts out of accent
    and look-alike folding; ``leet`` adds digits and symbols."""
    values, errors = clean_entry(
        kind=kind,
        term=term,
        action=action,
        code=code,
        info=info,
        exact=exact,
        leet=leet,
    )
    if not errors and _find_duplicate(blocklist, values["kind"], values["term"]):
        errors["term"] = [gettext("This list already has that entry.")]
    if errors:
        raise ValidationError(errors)
    entry = _create_entry(
        blocklist,
        values | {"review": bool(review)},
        expires_at=expires_at,
        note=note,
        actor=actor,
    )
    version.bump()
    return entry


def _create_entry(
    blocklist: Blocklist,
    values: dict[str, Any],
    *,
    expires_at: datetime | None,
    note: str,
    actor: Any,
) -> BlocklistEntry:
    """Insert a validated entry and its history row (the caller bumps the version)."""
    entry = BlocklistEntry.objects.create(
        blocklist=blocklist,
        expires_at=expires_at,
        note=note.strip(),
        added_by=actor if getattr(actor, "pk", None) else None,
        **values,
    )
    _record(actor, entry, "create", None, entry.snapshot())
    return entry


def _find_duplicate(
    blocklist: Blocklist, kind: str, term: str, exclude: int | None = None
) -> BlocklistEntry | None:
    entries = blocklist.entries.filter(
        kind=kind, term_key=BlocklistEntry.make_key(kind, term)
    )
    if exclude is not None:
        entries = entries.exclude(pk=exclude)
    return entries.first()


@transaction.atomic
def update_entry(
    entry: BlocklistEntry, *, actor: Any = None, **fields: Any
) -> BlocklistEntry:
    """Change an entry's fields (term, kind, action, code, info, exact, leet, expires_at,
    note, enabled). Raises ValidationError by field."""
    current = BlocklistEntry.objects.select_for_update().get(pk=entry.pk)
    before = current.snapshot()
    merged = {
        k: fields.get(k, getattr(current, k))
        for k in ("kind", "term", "action", "code", "info", "exact", "leet")
    }
    values, errors = clean_entry(**merged)
    if not errors and _find_duplicate(
        current.blocklist, values["kind"], values["term"], exclude=current.pk
    ):
        errors["term"] = [gettext("This list already has that entry.")]
    if errors:
        raise ValidationError(errors)
    for name, value in values.items():
        setattr(current, name, value)
    for name in ("expires_at", "note", "enabled", "review"):
        if name in fields:
            setattr(current, name, fields[name])
    current.save()
    after = current.snapshot()
    if after != before:
        action = "update"
        if set(fields) == {"enabled"}:
            action = "enable" if current.enabled else "disable"
        _record(actor, current, action, before, after)
        version.bump()
    return current


def set_entry_enabled(
    entry: BlocklistEntry, enabled: bool, *, actor: Any = None
) -> BlocklistEntry:
    return update_entry(entry, enabled=enabled, actor=actor)


@transaction.atomic
def delete_entry(entry: BlocklistEntry, *, actor: Any = None) -> None:
    before = entry.snapshot()
    pk = entry.pk
    entry.delete()
    entry.pk = pk
    _record(actor, entry, "delete", before, None)
    version.bump()


# --- import / export ------------------------------------------------------------------

COLUMNS = [
    "term",
    "kind",
    "action",
    "code",
    "info",
    "expires_at",
    "note",
    "exact",
    "leet",
]
_TRUE = {"1", "true", "yes", "y", "x", "on"}
_FALSE = {"", "0", "false", "no", "n", "off"}


@dataclass
class ImportReport:
    added: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "skipped": len(self.skipped),
            "refused": len(self.refused),
        }


def _rows(content: str, fmt: str) -> Iterable[tuple[int, dict[str, str]]]:
    """(line number, raw fields) for each non-blank line of the file."""
    if fmt == "txt":
        for n, line in enumerate(content.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                yield n, {"term": line}
        return
    if fmt == "jsonl":
        for n, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                yield n, {"_error": gettext("not a JSON object")}
                continue
            if not isinstance(item, dict):
                yield n, {"_error": gettext("not a JSON object")}
                continue
            yield n, {k: "" if v is None else str(v) for k, v in item.items()}
        return
    reader = csv.reader(io.StringIO(content))
    header: list[str] | None = None
    for n, cells in enumerate(reader, 1):
        if not any(c.strip() for c in cells):
            continue
        if header is None and n == 1 and cells[0].strip().lower() == "term":
            header = [c.strip().lower() for c in cells]
            continue
        names = header or COLUMNS
        # Undo the export's formula guard (a leading apostrophe).
        yield (
            n,
            {
                name: csv_uncell(cells[i])
                for i, name in enumerate(names)
                if i < len(cells)
            },
        )


def _parse_row(
    raw: dict[str, str],
    default_kind: str,
    default_action: str,
    default_exact: bool = False,
    default_leet: bool = False,
) -> tuple[dict[str, Any], datetime | None] | str:
    """(clean entry values, expires_at) for one line of an import, or why it is refused."""
    if "_error" in raw:
        return raw["_error"]
    code_raw = (raw.get("code") or "").strip()
    code: int | None = None
    if code_raw:
        if not code_raw.isdigit():
            return gettext("code must be a number")
        code = int(code_raw)
    expires_at = None
    if (raw.get("expires_at") or "").strip():
        expires_at = parse_datetime(raw["expires_at"].strip())
        if expires_at is None:
            return gettext("expires_at is not an ISO date and time")
        if timezone.is_naive(expires_at):
            expires_at = timezone.make_aware(expires_at)
    flags: dict[str, bool] = {}
    for name, default in (("exact", default_exact), ("leet", default_leet)):
        cell = (raw.get(name) or "").strip().lower()
        if cell not in _TRUE | _FALSE:
            return gettext("%(name)s must be 1 or 0") % {"name": name}
        flags[name] = cell in _TRUE or (not cell and default)
    values, errors = clean_entry(
        kind=(raw.get("kind") or "").strip() or default_kind,
        term=raw.get("term", ""),
        action=(raw.get("action") or "").strip() or default_action,
        code=code,
        info=raw.get("info", ""),
        **flags,
    )
    if errors:
        return "; ".join(msg for msgs in errors.values() for msg in msgs)
    return values, expires_at


def parse_import(
    content: str,
    *,
    fmt: str = "csv",
    default_kind: str = "word",
    default_action: str = "forbid",
) -> list[dict[str, Any]]:
    """The clean entry values of an import file's valid lines (for a dry run)."""
    out = []
    for _line, raw in _rows(content, fmt):
        parsed = _parse_row(raw, default_kind, default_action)
        if not isinstance(parsed, str):
            out.append(parsed[0])
    return out


@transaction.atomic
def import_entries(
    blocklist: Blocklist,
    content: str,
    *,
    fmt: str = "csv",
    actor: Any = None,
    default_kind: str = "word",
    default_action: str = "forbid",
    default_exact: bool = False,
    default_leet: bool = False,
) -> ImportReport:
    """Add one entry per line (TXT: the line is the term; CSV: term, kind, action,
    code, info, expires_at, note, exact, leet, with an optional header; JSONL: one
    object per line with those keys). A line without exact / leet takes the defaults.
    Duplicates are skipped, bad lines refused with a reason."""
    report = ImportReport()
    seen = set(blocklist.entries.values_list("kind", "term_key"))
    user = actor if getattr(actor, "pk", None) else None
    lines: list[int] = []
    new_entries: list[BlocklistEntry] = []
    for line, raw in _rows(content, fmt):
        parsed = _parse_row(
            raw, default_kind, default_action, default_exact, default_leet
        )
        if isinstance(parsed, str):
            term = (raw.get("term") or "").strip()
            report.refused.append({"line": line, "term": term, "reason": parsed})
            continue
        values, expires_at = parsed
        key = dedup_key(values["kind"], values["term"])
        if key in seen:
            report.skipped.append(
                {"line": line, "term": values["term"], "reason": "duplicate"}
            )
            continue
        seen.add(key)
        lines.append(line)
        new_entries.append(
            BlocklistEntry(
                blocklist=blocklist,
                expires_at=expires_at,
                note=(raw.get("note") or "").strip(),
                added_by=user,
                term_key=key[1],
                **values,
            )
        )
    # Bulk inserts: a 10,000-line file is two statements per 1,000 rows, not 20,000.
    BlocklistEntry.objects.bulk_create(new_entries, batch_size=1000)
    BlocklistChange.objects.bulk_create(
        [
            BlocklistChange(
                actor=user,
                actor_name=user.get_username() if user else "manage.py",
                object_type="entry",
                object_id=entry.pk,
                action="create",
                after=entry.snapshot(),
            )
            for entry in new_entries
        ],
        batch_size=1000,
    )
    report.added = [
        {"line": line, "term": entry.term, "id": entry.pk}
        for line, entry in zip(lines, new_entries, strict=True)
    ]
    if new_entries:
        version.bump()  # once for the whole file: the webhook rebuilds once
    return report


def entries_for_export(
    lists: QuerySet[Blocklist] | Iterable[Blocklist],
) -> list[BlocklistEntry]:
    return list(
        BlocklistEntry.objects.filter(blocklist__in=list(lists))
        .select_related("blocklist")
        .order_by("blocklist__name", "kind", "term")
    )


def export_row(entry: BlocklistEntry) -> dict[str, Any]:
    return {
        "term": entry.term,
        "kind": entry.kind,
        "action": entry.action,
        "code": entry.code,
        "info": entry.info,
        "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
        "note": entry.note,
        "exact": int(entry.exact),
        "leet": int(entry.leet),
    }


def export_csv(entries: Iterable[BlocklistEntry]) -> str:
    """CSV with a header row, formula-guarded (liveadmin.csv_export);
    import_entries reads it back unchanged."""
    rows = ([export_row(entry)[c] for c in COLUMNS] for entry in entries)
    return "".join(csv_stream(COLUMNS, rows, lineterminator="\n"))


# --- trying a message -------------------------------------------------------------------


@dataclass
class TryMatch:
    """One entry matching one place of the message."""

    entry: BlocklistEntry | None  # None: deleted since the rules were built
    action: str  # the entry's action, or "allow" when it exempted a hit
    field: str
    start: int
    end: int
    text: str  # the characters matched, as sent


@dataclass
class TryResult:
    verdict: matching.Verdict | None
    response: dict[str, Any]
    entries: list[BlocklistEntry]
    failure: str = ""
    # What the matcher read in each text (field, as sent, readings) and where entries matched.
    readings: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    matches: list[TryMatch] = field(default_factory=list)


def try_message(
    app: ProviderApp,
    *,
    text: str | None = None,
    body: dict[str, Any] | None = None,
    sender: str = "user-1",
    room_id: str = "room-1",
) -> TryResult:
    """What the webhook would answer for this app to a message (text, or a whole
    before-send body), with what the matcher read (the folded text) and which entry
    matched where. Nothing is recorded."""
    if body is None:
        body = {
            "CallbackCommand": hotpath.BEFORE_SEND,
            "GroupId": room_id,
            "Type": "Live",
            "From_Account": sender,
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text or ""}}],
        }
    fields, refused = hotpath.parse_before_send(body)
    if refused:
        raise ValidationError({"body": [refused.payload["error"]]})
    snapshot = rules_cache.rules.get(force_check=True)
    app_rules = snapshot.by_pk.get(app.pk)
    if app_rules is None:  # created this instant; next check sees it
        rules_cache.rules.mark_dirty()
        app_rules = rules_cache.rules.get().by_pk[app.pk]
    texts = dict(matching.iter_texts(fields["MsgBody"], fields["CloudCustomData"]))
    readings = [
        (path, value, matching.readings(value)) for path, value in texts.items()
    ]
    try:
        verdict, response = hotpath.decide(app_rules, fields)
    except hotpath.InternalFailure as exc:
        return TryResult(None, hotpath.fail_policy(app_rules), [], str(exc), readings)
    ids = {hit.rule_id for hit in verdict.hits}
    by_id = (
        BlocklistEntry.objects.filter(pk__in=ids).select_related("blocklist").in_bulk()
    )
    matches = [
        TryMatch(
            by_id.get(hit.rule_id),
            hit.action,
            hit.field,
            hit.start,
            hit.end,
            (
                fields["From_Account"]
                if hit.field == "From_Account"
                else texts.get(hit.field, "")
            )[hit.start : hit.end],
        )
        for hit in verdict.hits
    ]
    return TryResult(verdict, response, list(by_id.values()), "", readings, matches)
