"""Raw SQL for migrations that add triggers: one script per database vendor.

Kept small and stable on purpose: migrations import it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Statements of a script are separated by this line (function bodies hold ";").
SEPARATOR = "---"


def run_script(schema_editor: Any, script: str) -> None:
    """Execute each statement of ``script`` on its own, without parameters."""
    for statement in script.split(SEPARATOR):
        if statement.strip():
            schema_editor.execute(statement.strip(), params=None)


def per_vendor(
    scripts: dict[str, str | Callable[[Any], str]],
) -> Callable[[Any, Any], None]:
    """A RunPython function running the script for the connection's vendor (a
    callable script gets the migration's ``apps``); other vendors get nothing."""

    def run(apps: Any, schema_editor: Any) -> None:
        script = scripts.get(schema_editor.connection.vendor)
        if script is None:
            return
        run_script(schema_editor, script(apps) if callable(script) else script)

    return run
