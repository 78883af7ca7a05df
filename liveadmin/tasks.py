from __future__ import annotations

from celery import shared_task

from liveadmin.rollup import rollup


@shared_task
def rollup_counts() -> dict[str, int]:
    """Bring the overview's counts up to date (beat runs it every SEND_TICK_SECONDS)."""
    return rollup()
