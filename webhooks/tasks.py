"""Celery tasks of the webhooks app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from webhooks.recent import recent


@shared_task(ignore_result=True)
def purge_recent_messages() -> int:
    """Drop stored recent messages older than RECENT_MESSAGES_SECONDS."""
    return recent.purge()
