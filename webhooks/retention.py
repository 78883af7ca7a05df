"""The decision log's retention purge: the only way a decision row is removed.

Runs as the database owner (``manage.py purgedecisions``; the application's role
holds no DELETE on the log), removes rows older than DECISION_RETENTION_DAYS and
records what it removed (a RetentionPurge row, and a log line).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from webhooks.models import Decision, RetentionPurge

logger = logging.getLogger(__name__)


def purge_decisions(
    *, now: datetime | None = None, dry_run: bool = False
) -> RetentionPurge:
    """Remove decisions older than the retention period; return the record of it.

    With ``dry_run`` nothing is removed or recorded (the returned row is unsaved).
    """
    days = settings.DECISION_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    with transaction.atomic():
        old = Decision.objects.filter(created_at__lt=cutoff)
        summary = old.aggregate(
            rows=Count("id"),
            first_id=Min("id"),
            last_id=Max("id"),
            oldest=Min("created_at"),
            newest=Max("created_at"),
        )
        purge = RetentionPurge(
            table=Decision._meta.db_table, cutoff=cutoff, retention_days=days, **summary
        )
        if dry_run or not summary["rows"]:
            return purge
        if connection.vendor == "postgresql":
            # The trigger lets a DELETE through only inside a declared purge.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL liveadmin.retention_purge = 'on'")
        removed = old._raw_delete(old.db)
        purge.rows = removed
        purge.save()
    logger.info(
        "retention purge removed %s decision(s) %s..%s created before %s",
        removed,
        purge.first_id,
        purge.last_id,
        cutoff.isoformat(),
    )
    return purge
