"""Message walking: every text of a before-send body the room will show, and masking."""

from __future__ import annotations

import json
from collections.abc import Iterator

# JSON strings nested in JSON strings are unwrapped this many levels deep.
MAX_JSON_DEPTH = 3

# MsgContent keys that carry text, per element type (PROVIDERS.md section 4).
TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "TIMTextElem": ("Text",),
    "TIMCustomElem": ("Data", "Desc", "Ext"),
    "TIMFaceElem": ("Data",),
    "TIMLocationElem": ("Desc",),
    "TIMRelayElem": ("Title", "CompatibleText", "AbstractList"),
}

# Fields the provider documents as strings (PROVIDERS.md section 4), by lower-cased MsgType: a
# call that sends another type there is refused (400) rather than scanned as something else.
DOCUMENTED_STRINGS: dict[str, tuple[str, ...]] = {
    "timtextelem": ("Text",),
    "timcustomelem": ("Data", "Desc", "Ext", "Sound"),
    "timfaceelem": ("Data",),
    "timlocationelem": ("Desc",),
}


def _parse_container(value: str):
    """The parsed JSON when value is a JSON object or array, else None.

    Only strict JSON that survives a round trip counts: NaN / Infinity, numbers that overflow to
    infinity and duplicate keys (which would hide a value from the scan and vanish when masking
    re-serialises) make the string plain text, scanned as it stands."""
    stripped = value.lstrip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        parsed = json.loads(
            value,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict | list) else None


def _refuse_constant(name: str):
    raise ValueError(name)


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(text)
    return number


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _iter_value(value, path: str, depth: int) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        parsed = _parse_container(value) if depth < MAX_JSON_DEPTH else None
        if parsed is None:
            if value:
                yield path, value
        else:
            yield from _iter_value(parsed, path, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _iter_value(item, f"{path}.{key}", depth)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _iter_value(item, f"{path}[{index}]", depth)


def iter_texts(msg_body, cloud_custom_data) -> Iterator[tuple[str, str]]:
    """(field path, text) for every inspected string of a message; skips what cannot be read."""
    if isinstance(msg_body, list):
        for index, element in enumerate(msg_body):
            if not isinstance(element, dict):
                continue
            msg_type = element.get("MsgType")
            content = element.get("MsgContent")
            if not isinstance(msg_type, str) or not isinstance(content, dict):
                continue
            for key in TEXT_FIELDS.get(msg_type, ()):
                value = content.get(key)
                if isinstance(value, str):
                    yield from _iter_value(value, f"MsgBody[{index}].{key}", 0)
                elif isinstance(value, list) and key == "AbstractList":
                    yield from _iter_value(
                        value, f"MsgBody[{index}].{key}", MAX_JSON_DEPTH
                    )
    if isinstance(cloud_custom_data, str):
        yield from _iter_value(cloud_custom_data, "CloudCustomData", 0)


def _mask_string(value: str, spans: list[tuple[int, int]]) -> str:
    """value with the characters of spans replaced by "*" (overlapping spans merged first, so a flood
    of overlapping hits costs no more than the string's length)."""
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        start, end = max(start, pos), min(end, len(value))
        if end <= start:
            continue
        out.append(value[pos:start])
        out.append("*" * (end - start))
        pos = end
    out.append(value[pos:])
    return "".join(out)


def _mask_value(
    value,
    path: str,
    depth: int,
    masks: dict[str, list[tuple[int, int]]],
    mask_all: bool,
):
    """Masked copy of value (str, dict or list), following the same paths as _iter_value."""
    if isinstance(value, str):
        parsed = _parse_container(value) if depth < MAX_JSON_DEPTH else None
        if parsed is None:
            if mask_all:
                return "*" * len(value)
            spans = masks.get(path)
            return _mask_string(value, spans) if spans else value
        new = _mask_value(parsed, path, depth + 1, masks, mask_all)
        if new == parsed:
            return value
        return json.dumps(new, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, dict):
        return {
            k: _mask_value(v, f"{path}.{k}", depth, masks, mask_all)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _mask_value(v, f"{path}[{i}]", depth, masks, mask_all)
            for i, v in enumerate(value)
        ]
    return value


def mask_message(
    msg_body,
    cloud_custom_data,
    masks: dict[str, list[tuple[int, int]]],
    *,
    mask_all: bool = False,
) -> tuple[list | None, str | None]:
    """Masked copies: (MsgBody, CloudCustomData or None when unchanged). The input is not modified."""
    new_body = None
    if isinstance(msg_body, list):
        new_body = []
        for index, element in enumerate(msg_body):
            content = element.get("MsgContent") if isinstance(element, dict) else None
            msg_type = element.get("MsgType") if isinstance(element, dict) else None
            keys = TEXT_FIELDS.get(msg_type, ()) if isinstance(msg_type, str) else ()
            if not isinstance(content, dict) or not keys:
                new_body.append(_deep_copy(element))
                continue
            new_content = {}
            for key, value in content.items():
                if key in keys and isinstance(value, str):
                    new_content[key] = _mask_value(
                        value, f"MsgBody[{index}].{key}", 0, masks, mask_all
                    )
                elif key in keys and isinstance(value, list) and key == "AbstractList":
                    new_content[key] = _mask_value(
                        value,
                        f"MsgBody[{index}].{key}",
                        MAX_JSON_DEPTH,
                        masks,
                        mask_all,
                    )
                else:
                    new_content[key] = _deep_copy(value)
            new_element = {
                k: (new_content if k == "MsgContent" else _deep_copy(v))
                for k, v in element.items()
            }
            new_body.append(new_element)
    new_ccd = None
    if isinstance(cloud_custom_data, str):
        masked = _mask_value(cloud_custom_data, "CloudCustomData", 0, masks, mask_all)
        if masked != cloud_custom_data:
            new_ccd = masked
    return new_body, new_ccd


def _deep_copy(value):
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
