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

Tasks are named by their Celery name (``"messaging.tasks.run_batch"``), never
imported here: this module imports nothing of messaging, so services can queue
work without an import cycle through tasks.py.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_timers: set[threading.Timer] = set()
_scheduler: threading.Thread | None = None
_scheduler_stop = threading.Event()


def uses_broker() -> bool:
    return bool(settings.CELERY_BROKER_URL)


def enqueue(task_name: str, *args: Any, countdown: float = 0) -> None:
    """Run the task named ``task_name`` with ``args`` in the background, once the
    current transaction commits (so a worker never sees rows not yet committed)."""
    if uses_broker():
        options = {"countdown": countdown} if countdown > 0 else {}
        transaction.on_commit(
            lambda: current_app.send_task(task_name, args=args, **options)
        )
        return
    transaction.on_commit(lambda: _submit(task_name, args, countdown))


def _submit(task_name: str, args: tuple, countdown: float) -> None:
    if countdown > 0:
        timer = threading.Timer(countdown, _fire, args=(task_name, args))
        timer.daemon = True
        with _lock:
            _timers.add(timer)
        timer.start()
        return
    _get_executor().submit(_run, task_name, args)


def _fire(task_name: str, args: tuple) -> None:
    with _lock:
        _timers.difference_update([t for t in _timers if not t.is_alive()])
    _submit(task_name, args, 0)


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=settings.EMBEDDED_WORKERS,
                thread_name_prefix="liveadmin-send",
            )
        return _executor


def _run(task_name: str, args: tuple) -> None:
    """Run one task in a pool thread, with its own database connection."""
    close_old_connections()
    try:
        import_string(task_name)(*args)
    except Exception:
        # The rows stay in the database; recovery queues them again.
        logger.exception("background task %s failed", task_name)
    finally:
        connections.close_all()


def wait_idle(timeout: float = 60.0) -> None:
    """Wait until the embedded pool has run everything queued, including tasks
    queued with a countdown and the follow-ups they queue (for shutdown and tests)."""
    global _executor
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _lock:
            timers = list(_timers)
        for timer in timers:
            timer.join(max(0.0, deadline - time.monotonic()))
        with _lock:
            executor, _executor = _executor, None
            _timers.difference_update([t for t in _timers if not t.is_alive()])
        if executor is not None:
            executor.shutdown(wait=True)
        with _lock:
            if not _timers and _executor is None:
                return


# When each periodic task last ran in this process (monotonic seconds).
_last_run: dict[str, float] = {}


def tick() -> None:
    """One round of the periodic work: each task of CELERY_BEAT_SCHEDULE whose own
    schedule has come round (the audit chain's verification runs hourly, not every
    tick)."""
    now = time.monotonic()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        last = _last_run.get(name)
        if last is not None and now - last < float(str(entry["schedule"])):
            continue
        _last_run[name] = now
        import_string(str(entry["task"]))()


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
