"""Named variables in message templates: ``{host_name}`` is filled in at send time.

Only ``{identifier}`` is a variable, and ``{{identifier}}`` is the literal text
``{identifier}``. Every other brace is kept as typed, so JSON in a custom message
(``{"type": "gift", "host": "{host_name}"}``) needs no escaping; with Python's
``str.format`` rules every JSON brace would have to be doubled, and a nested object
ending in ``}}`` would silently lose a brace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_TOKEN = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def extract_variables(*texts: str) -> list[str]:
    """The variable names used in ``texts``, in order of first use, without repeats."""
    names: list[str] = []
    for text in texts:
        for match in _TOKEN.finditer(text or ""):
            name = match.group(2)
            if name and name not in names:
                names.append(name)
    return names


def variables_in(values: Iterable[object]) -> list[str]:
    """Variable names used by the string values of a field mapping."""
    return extract_variables(*(v for v in values if isinstance(v, str)))


def fill(text: str, values: Mapping[str, str], *, strict: bool = True) -> str:
    """Replace each ``{name}`` with its value and each ``{{name}}`` with ``{name}``.

    A variable without a value raises KeyError, or with ``strict=False`` stays as
    ``{name}`` (to check the rest of a form whose variable inputs are incomplete).
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "{" + match.group(1) + "}"
        name = match.group(2)
        if not strict and name not in values:
            return match.group(0)
        return values[name]

    return _TOKEN.sub(replace, text)
