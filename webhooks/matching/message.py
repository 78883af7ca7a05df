"""Message walking: every text of a before-send body the room will show, and masking."""

from __future__ import annotations

import json
from collections.abc import Iterator

# JSON strings nested in JSON strings are unwrapped this many levels deep.
MAX_JSON_DEPTH = 3

# Fields the provider documents as strings (docs/providers.md, "Message elements"), by lower-cased MsgType: a
# call that sends another type there is refused (400) rather than scanned as something else.
DOCUMENTED_STRINGS: dict[str, tuple[str, ...]] = {
    "timtextelem": ("Text",),
    "timcustomelem": ("Data", "Desc", "Ext", "Sound"),
    "timfaceelem": ("Data",),
    "timlocationelem": ("Desc",),
}


# Parsed JSON of recent short strings: CloudCustomData and custom Data repeat from message to
# message ('{"level":3}'), and each message reads them twice (walking, joining). The parsed values
# are only read, never changed (masking builds copies).
_PARSED: dict[str, object] = {}
_PARSED_MAX = 4096
_PARSED_MAX_LENGTH = 2048


def _parse_container(value: str) -> object:
    """The parsed JSON when value is a JSON object or array, else None.

    Only strict JSON that survives a round trip counts: NaN / Infinity, numbers that overflow to
    infinity and duplicate keys (which would hide a value from the scan and vanish when masking
    re-serialises) make the string plain text, scanned as it stands."""
    stripped = value.lstrip()
    if not stripped or stripped[0] not in "{[":
        return None
    if len(value) <= _PARSED_MAX_LENGTH:
        try:
            return _PARSED[value]
        except KeyError:
            parsed = _parse_strictly(value)
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[value] = parsed
            return parsed
    return _parse_strictly(value)


def _parse_strictly(value: str) -> object:
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


def _key_path(path: str, key: str) -> str:
    """The path of a JSON object's key itself (keys are scanned too: a client may show them)."""
    return f"{path}.{key}:key"


def _iter_value(value: object, path: str, depth: int) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        parsed = _parse_container(value) if depth < MAX_JSON_DEPTH else None
        if parsed is None:
            if value:
                yield path, value
        else:
            yield from _iter_value(parsed, path, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key:
                yield _key_path(path, key), key
            yield from _iter_value(item, f"{path}.{key}", depth)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _iter_value(item, f"{path}[{index}]", depth)


def _contents(msg_body: object) -> Iterator[tuple[int, dict]]:
    """(index, MsgContent) of every element, whatever its MsgType."""
    if isinstance(msg_body, list):
        for index, element in enumerate(msg_body):
            if isinstance(element, dict):
                content = element.get("MsgContent")
                if isinstance(content, dict):
                    yield index, content


def iter_texts(
    msg_body: object, cloud_custom_data: object
) -> Iterator[tuple[str, str]]:
    """(field path, text) for every string a room may show: every string value of every
    element's MsgContent whatever the MsgType, keys and values of JSON inside them at any
    depth, and CloudCustomData. Skips what cannot be read, never raises."""
    for index, content in _contents(msg_body):
        for key, value in content.items():
            yield from _iter_value(value, f"MsgBody[{index}].{key}", 0)
    if isinstance(cloud_custom_data, str):
        yield from _iter_value(cloud_custom_data, "CloudCustomData", 0)


def joinable_texts(
    msg_body: object, cloud_custom_data: object
) -> list[tuple[str, str]]:
    """The plain (not JSON) string fields of the elements, in order, then CloudCustomData: the
    texts a room shows one after the other, so a word split across two of them is read whole."""
    out: list[tuple[str, str]] = []
    for index, content in _contents(msg_body):
        for key, value in content.items():
            if isinstance(value, str) and value and _parse_container(value) is None:
                out.append((f"MsgBody[{index}].{key}", value))
    if (
        isinstance(cloud_custom_data, str)
        and cloud_custom_data
        and _parse_container(cloud_custom_data) is None
    ):
        out.append(("CloudCustomData", cloud_custom_data))
    return out


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
    value: object,
    path: str,
    depth: int,
    masks: dict[str, list[tuple[int, int]]],
    mask_all: bool,
) -> object:
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
        out = {}
        for k, v in value.items():
            spans = masks.get(_key_path(path, k)) if isinstance(k, str) else None
            new_key = _mask_string(k, spans) if spans else k
            out[new_key] = _mask_value(v, f"{path}.{k}", depth, masks, mask_all)
        return out
    if isinstance(value, list):
        return [
            _mask_value(v, f"{path}[{i}]", depth, masks, mask_all)
            for i, v in enumerate(value)
        ]
    return value


def mask_message(
    msg_body: object,
    cloud_custom_data: object,
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
            if not isinstance(element, dict) or not isinstance(content, dict):
                new_body.append(_deep_copy(element))
                continue
            new_content = {
                key: _mask_value(value, f"MsgBody[{index}].{key}", 0, masks, mask_all)
                for key, value in content.items()
            }
            new_body.append(
                {
                    k: (new_content if k == "MsgContent" else _deep_copy(v))
                    for k, v in element.items()
                }
            )
    new_ccd = None
    if isinstance(cloud_custom_data, str):
        masked = _mask_value(cloud_custom_data, "CloudCustomData", 0, masks, mask_all)
        if masked != cloud_custom_data and isinstance(masked, str):
            new_ccd = masked
    return new_body, new_ccd


def _deep_copy(value):
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
