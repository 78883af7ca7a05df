from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext_noop

from messaging.management.base import TranslatedCommand
from messaging.services import batches, recovery


class Command(TranslatedCommand):
    help = gettext_noop(
        "Close bulk sends a dead worker left unanswered (claimed longer than "
        "SEND_CLAIM_TIMEOUT ago: outcome unknown, or sent again for a broadcast), "
        "re-queue batches whose runners were lost, and start scheduled batches that "
        "are due. Rows that got an answer are never sent again. Workers also run "
        "this at start."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = batches.start_due_batches()
        recovered = recovery.recover_sends()
        self.stdout.write(
            json.dumps(
                {
                    "started_batches": started,
                    "released_records": recovered["released"],
                    "unknown_records": recovered["unknown"],
                    "requeued_batches": recovered["requeued_batches"],
                }
            )
        )
