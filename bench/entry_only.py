"""The Procfile's entry point (webhooks/rsgi.py) with ``answer()`` replaced by a bare JSON
parse: what the entry and the server cost without the matcher, measured by
bench/webhook_load.py beside the real webhook and the raw callables."""

from __future__ import annotations

import os
from collections.abc import Mapping

import orjson

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveadmin.settings")

from webhooks import hotpath, rsgi  # noqa: E402


async def _parse_only(query: Mapping[str, str], body: bytes) -> hotpath.Reply:
    orjson.loads(body)
    return hotpath.Reply(200, hotpath.OK)


# rsgi.webhook calls it through the module: the entry's own work stays as it is.
hotpath.answer_on_loop = _parse_only
application = rsgi.application
