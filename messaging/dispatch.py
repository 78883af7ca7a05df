"""Where background work runs: Celery workers, or threads in this process.

With ``CELERY_BROKER_URL`` set, ``enqueue`` hands tasks to the broker after the
current transaction commits (``delay_on_commit`` / ``apply_async``), and Celery
beat runs the periodic tasks (settings.CELERY_BEAT_SCHEDULE).

Without a broker (the embedded default of ``make run``) the same task functions
run on a small thread pool inside the web process, and a scheduler thread starts
due scheduled batches and recovers abandoned sends every SEND_TICK_SECONDS. A
batch then still runs in the background and its page shows live progress; the
claims on each row keep the pool's threads (and several web processes) from
sending a room twice. Work queued in memory is lost if the process stops, but
the rows are in the database: the scheduler's recovery queues them again at the
next start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections, transaction

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_scheduler: threading.Thread | None = None
_scheduler_stop = threading.Event()


def uses_broker() -> bool:
    return bool(settings.CELERY_BROKER_URL)


def enqueue(task: Any, *args: Any, countdown: float = 0) -> None:
    """Run ``task(*args)`` in the background once the current transaction commits."""
    if uses_broker():
        if countdown:
            transaction.on_commit(
                lambda: task.apply_async(args=args, countdown=countdown)
            )
        else:
            task.delay_on_commit(*args)
        return
    transaction.on_commit(lambda: _submit(task, args, countdown))


def _submit(task: Any, args: tuple, countdown: float) -> None:
    if countdown > 0:
        timer = threading.Timer(countdown, _submit, args=(task, args, 0))
        timer.daemon = True
        timer.start()
        return
    _get_executor().submit(_run, task, args)


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=settings.EMBEDDED_WORKERS,
                thread_name_prefix="liveadmin-send",
            )
        return _executor


def _run(task: Callable, args: tuple) -> None:
    """Run one task in a pool thread, with its own database connection."""
    close_old_connections()
    try:
        task(*args)
    except Exception:
        # The rows stay in the database; recovery queues them again.
        logger.exception("background task %s failed", getattr(task, "name", task))
    finally:
        connections.close_all()


def wait_idle(timeout: float = 30.0) -> None:
    """Wait until the embedded pool has run everything queued (for shutdown/tests)."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=True)


def tick() -> None:
    """One round of the periodic work: start due batches, recover abandoned sends."""
    from messaging.services import batches

    batches.start_due_batches()
    batches.recover_sends()


def start_embedded_scheduler() -> bool:
    """Start the scheduler thread once per process (embedded default only)."""
    global _scheduler
    if uses_broker():
        return False
    with _lock:
        if _scheduler is not None and _scheduler.is_alive():
            return False
        _scheduler_stop.clear()
        _scheduler = threading.Thread(
            target=_scheduler_loop, name="liveadmin-scheduler", daemon=True
        )
        _scheduler.start()
    return True


def stop_embedded_scheduler() -> None:
    _scheduler_stop.set()
    if _scheduler is not None:
        _scheduler.join(timeout=10)


def _scheduler_loop() -> None:
    while not _scheduler_stop.is_set():
        close_old_connections()
        try:
            tick()
        except Exception:
            logger.exception("embedded scheduler tick failed")
        finally:
            connections.close_all()
        _scheduler_stop.wait(settings.SEND_TICK_SECONDS)
