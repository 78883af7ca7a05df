"""Celery tasks of the messaging app: thin wrappers around services."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError

from messaging import dispatch
from messaging.services import audit_chain, batch_runner, batches, recovery

logger = logging.getLogger(__name__)

# Infrastructure hiccups (database or Redis restarting): the whole task retries
# with backoff. Provider answers are handled per room inside the service.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, redis.RedisError)


@shared_task(
    name=batches.RUN_BATCH_TASK,
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
)
def run_batch(batch_id: int) -> None:
    again_in = batch_runner.run_batch(batch_id)
    if again_in is not None:
        dispatch.enqueue(batches.RUN_BATCH_TASK, batch_id, countdown=again_in)


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=True)
def start_due_batches() -> None:
    batches.start_due_batches()


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=True)
def recover_sends() -> None:
    recovery.recover_sends()


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=True)
def link_audit_chain() -> None:
    audit_chain.link_final_sends()


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=True)
def verify_audit_chain() -> None:
    audit_chain.verify_chain()


@worker_ready.connect
def recover_at_worker_start(**kwargs: Any) -> None:
    """A worker starting after a crash closes what the dead one left: now, and
    again once the dead worker's claims have timed out."""
    recover_sends.delay()
    recover_sends.apply_async(countdown=settings.SEND_CLAIM_TIMEOUT + 1)
