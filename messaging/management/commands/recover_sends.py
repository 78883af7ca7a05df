from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from messaging.services import batches


class Command(BaseCommand):
    help = (
        "Re-queue bulk sends a dead worker left unanswered (claimed longer than "
        "SEND_CLAIM_TIMEOUT ago) and start scheduled batches that are due. Rows that "
        "got an answer are never sent again. Workers also run this at start."
    )

    def add_arguments(self, parser: Any) -> None:
        pass

    def handle(self, *args: Any, **options: Any) -> None:
        started = batches.start_due_batches()
        recovered = batches.recover_sends()
        self.stdout.write(
            json.dumps(
                {
                    "started_batches": started,
                    "released_records": recovered["released"],
                    "requeued_batches": recovered["requeued_batches"],
                }
            )
        )
