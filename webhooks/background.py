"""A writer thread that flushes what the hot path buffered in memory, off the request.

The hot path only appends to memory and may wake the writer; the writer flushes every
WEBHOOK_RECORD_SECONDS, or at once when woken. Without WEBHOOK_RECORD_IN_BACKGROUND
(tests, commands) nothing starts and the caller flushes itself.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


class BackgroundWriter:
    """Subclasses implement ``flush()``; ``thread_name`` and ``failure`` name them."""

    thread_name = "webhook-writer"
    failure = "could not write what the webhook buffered"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def flush(self) -> int:
        raise NotImplementedError

    def _maybe_wake(self, size: int) -> None:
        """Make sure the writer runs; wake it now once ``size`` reaches a batch."""
        if not settings.WEBHOOK_RECORD_IN_BACKGROUND:
            return
        if self._thread is None or not self._thread.is_alive():
            self._start()
        if size >= settings.WEBHOOK_RECORD_BATCH:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
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
                close_old_connections()
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
