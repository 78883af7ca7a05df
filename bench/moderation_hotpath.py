"""What moderation adds to the webhook's answer, in process (no server, no wrk).

    python bench/moderation_hotpath.py [--calls 20000]

Against the configured database (DATABASE_URL or the development SQLite, migrated),
with one scratch app and 1,000 word entries: times hotpath.answer() for a clean
~200-character message, then the moderation steps alone for the same message
(moderation state lookup, mute check, review/escalation check, the recent-store
note). Prints µs per call and the steps' share of the whole answer, measured in the
same run. The scratch app and its entries are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveadmin.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["WEBHOOK_RECORD_IN_BACKGROUND"] = "0"

APP_ID = 1400999111


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    calls = min(args.calls, 200_000)

    import django

    django.setup()
    from messaging.models import ProviderApp
    from webhooks import enforcement, hotpath
    from webhooks.models import Blocklist, BlocklistEntry
    from webhooks.recent import recent
    from webhooks.recorder import recorder

    ProviderApp.objects.filter(app_id=APP_ID).delete()
    app = ProviderApp.objects.create(
        name="moderation-hotpath-bench",
        provider="tencent",
        app_id=APP_ID,
        region="singapore",
        identifier="administrator",
        secret_key="bench-secret-0123456789",
    )
    blocklist = Blocklist.objects.create(name="moderation-hotpath-bench", app=app)
    BlocklistEntry.objects.bulk_create(
        BlocklistEntry(blocklist=blocklist, term=f"badword{i}", term_key=f"badword{i}")
        for i in range(1000)
    )
    hotpath.rules.mark_dirty()
    text = "this is a perfectly clean message about the stream tonight " * 3
    body = {
        "CallbackCommand": hotpath.BEFORE_SEND,
        "GroupId": "room-1",
        "Type": "Live",
        "From_Account": "viewer-1",
        "Operator_Account": "viewer-1",
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}],
    }
    raw = json.dumps(body).encode()
    query = {"SdkAppid": str(APP_ID), "CallbackCommand": hotpath.BEFORE_SEND}
    try:
        assert hotpath.answer(query, raw).payload["ErrorCode"] == 0
        print(f"load: {os.getloadavg()[0]:.2f} (1 min)")
        best_answer = best_steps = float("inf")
        for _round in range(5):
            started = time.perf_counter()
            for _ in range(calls):
                hotpath.answer(query, raw)
            best_answer = min(best_answer, (time.perf_counter() - started) / calls)
            recorder.discard()
            recent.discard()
            started = time.perf_counter()
            now = time.time()
            for _ in range(calls):
                mod = hotpath.rules.get().moderation_for(app.pk)
                enforcement.muted(mod, "viewer-1", "room-1", now)
                enforcement.after_verdict(mod, "viewer-1", "room-1", "allow", [], now)
                recent.note(app.pk, "room-1", "viewer-1", text, "allow", 50)
            best_steps = min(best_steps, (time.perf_counter() - started) / calls)
            recent.discard()
        print(f"answer(), clean message, 1,000 entries: {best_answer * 1e6:.1f} µs")
        print(
            f"moderation steps alone: {best_steps * 1e6:.2f} µs = "
            f"{best_steps / best_answer:.1%} of the answer (best of 5 rounds of {calls:,})"
        )
    finally:
        app.delete()
        Blocklist.objects.filter(name="moderation-hotpath-bench").delete()


if __name__ == "__main__":
    main()
