"""The ledger writer: rows queue in memory and a single thread commits them in batches."""

from __future__ import annotations

import logging
import queue
import threading
import time

from hermit.core.models import LedgerEntry
from hermit.store import repos

log = logging.getLogger("hermit.ledger")

_STOP = object()
MAX_BATCH = 1000
RETRY_SECONDS = 0.5


class LedgerWriter:
    """Accepts entries from any thread without blocking; commits them off the event loop.

    Each batch is whatever queued while the previous commit ran, so under load rows are
    committed within one transaction time of being submitted, and at rest immediately.
    `close()` drains everything queued before returning.
    """

    def __init__(self, on_written=None) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hermit-ledger-writer", daemon=True)
        self._on_written = on_written
        self._closed = False
        self.written = 0
        self.failed_batches = 0
        self._idle = threading.Event()
        self._idle.set()
        self._thread.start()

    def submit(self, entry: LedgerEntry) -> None:
        if self._closed:
            raise RuntimeError("ledger writer is closed")
        self._idle.clear()
        self._queue.put(entry)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is committed."""
        marker = threading.Event()
        self._queue.put(marker)
        return marker.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            batch: list[LedgerEntry] = []
            markers: list[threading.Event] = []
            while True:
                if item is _STOP:
                    stop = True
                elif isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch.append(item)
                if len(batch) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            for marker in markers:
                marker.set()

    def _write(self, batch: list[LedgerEntry]) -> None:
        attempt = 0
        while True:
            try:
                repos.insert_ledger(batch)
                self.written += len(batch)
                if self._on_written is not None:
                    self._on_written(batch)
                return
            except Exception as exc:  # noqa: BLE001 - keep rows, retry, never lose silently
                attempt += 1
                self.failed_batches += 1
                log.error("ledger write failed (attempt %d, %d rows kept): %s", attempt, len(batch), exc)
                if attempt >= 20:
                    log.critical("giving up on %d ledger rows after %d attempts", len(batch), attempt)
                    return
                time.sleep(RETRY_SECONDS)
