"""A writer thread that flushes what the hot path buffered in memory, off the request.

The hot path only appends to memory and may wake the writer; the writer flushes every
WEBHOOK_RECORD_SECONDS, or at once when woken. Without WEBHOOK_RECORD_IN_BACKGROUND
(tests, commands) nothing starts and the caller flushes itself.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref

from django.conf import settings
from django.db import connections

from webhooks.hot_settings import hot

logger = logging.getLogger(__name__)

_writers: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()


def _forget_threads() -> None:
    """In a forked child the writers' threads do not exist: start them again there."""
    for writer in list(_writers):
        writer._thread = None


os.register_at_fork(after_in_child=_forget_threads)


def reuse_connections() -> None:
    """The writer keeps its database connections from one flush to the next, whatever
    CONN_MAX_AGE asks of requests' (0 by default: Django's close_old_connections closed
    it, so every flush connected again, several times a second under load; py-spy: a
    fifth of the writer's samples were in connecting). One that failed and is no
    longer usable is closed, and the flush connects anew (its batch was put back)."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None or not connection.errors_occurred:
            continue
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()


def stop_all() -> None:
    """Stop every writer of this process after a last flush (tests; a clean exit)."""
    for writer in list(_writers):
        writer.stop()


class BackgroundWriter:
    """Subclasses implement ``flush()``; ``thread_name`` and ``failure`` name them."""

    thread_name = "webhook-writer"
    failure = "could not write what the webhook buffered"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _writers.add(self)

    def flush(self) -> int:
        raise NotImplementedError

    def _maybe_wake(self, size: int) -> None:
        """Make sure the writer runs; wake it now once ``size`` reaches a batch."""
        config = hot()
        if not config.record_in_background:
            return
        if self._thread is None:
            self._start()
        if size >= config.record_batch and not self._wake.is_set():
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name=self.thread_name, daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(settings.WEBHOOK_RECORD_SECONDS)
            self._wake.clear()
            try:
                reuse_connections()
                self.flush()
            except Exception:
                logger.exception(self.failure)
        connections.close_all()

    def stop(self) -> None:
        """Stop the writer after a last flush (tests; a clean exit)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout=10)
        self._thread = None
        self._stop.clear()
