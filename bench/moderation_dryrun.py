"""Dry run of a draft entry over 100,000 recent messages of one app (goal: ≤ 2 s).

    python bench/moderation_dryrun.py [--messages 100000]

Fills the recent-message store of a scratch app id (the Redis stream when
REDIS_URL is set, process memory otherwise) with ~120-character messages (half
CJK), then times dry runs of a word, a wildcard, a regex and a user entry over all
of them. Prints each time, its ratio to the 2 s goal, and as a baseline measured
in the same run the time to only read the stored messages back. Cleans up after.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveadmin.settings")
os.environ.setdefault("DEBUG", "1")

rng = random.Random(20261201)
SCRATCH_APP = 2_000_000_000  # an app id no database holds


def cjk(n: int) -> str:
    return "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(n))


def latin(n: int) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    n = min(args.messages, 1_000_000)

    import django

    django.setup()
    from django.conf import settings

    from messaging.models import ProviderApp
    from webhooks import dryrun
    from webhooks.recent import recent

    settings.RECENT_MESSAGES_MAX = max(settings.RECENT_MESSAGES_MAX, n)
    app = ProviderApp(pk=SCRATCH_APP, name="bench")
    store = "Redis stream" if settings.REDIS_URL else "process memory"
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    print(f"filling {n:,} messages into the {store} ...", flush=True)
    recent.clear(app.pk)
    started = time.perf_counter()
    for i in range(n):
        text = cjk(40) if i % 2 else latin(120)
        if i % 1000 == 0:
            text += " buy cheap pills now"
        recent.note(app.pk, f"room-{i % 50}", f"viewer-{i % 5000}", text, "allow", 300)
        if i % 5000 == 4999:
            recent.flush()
    recent.flush()
    print(f"filled in {time.perf_counter() - started:.1f} s")
    try:
        started = time.perf_counter()
        read = sum(1 for _ in recent.read(app.pk))
        baseline = time.perf_counter() - started
        print(f"read back {read:,} messages: {baseline:.2f} s (baseline)")
        drafts = [
            ("word", "pills"),
            ("wildcard", "cheap*now"),
            ("regex", r"pi+lls?\s+now"),
            ("user", "viewer-42"),
        ]
        for kind, term in drafts:
            result = dryrun.dry_run(
                app, [{"kind": kind, "term": term, "action": "forbid"}]
            )
            print(
                f"dry run {kind:8} {term!r:18}: would_change {result.would_change:>6,} "
                f"of {result.of:,} in {result.seconds:.2f} s = {result.seconds / 2:.2f}x "
                f"of the 2 s goal, {result.seconds / baseline:.1f}x the read"
            )
    finally:
        recent.clear(app.pk)


if __name__ == "__main__":
    main()
