"""The ledger writer: rows queue in memory and a single thread commits them in batches."""

from __future__ import annotations

import collections
import logging
import threading
import time

from hermit.core.models import LedgerEntry
from hermit.store import repos

log = logging.getLogger("hermit.ledger")

MAX_BATCH = 2000
LINGER_SECONDS = 0.02
RETRY_SECONDS = 0.5


class LedgerWriter:
    """Accepts entries from any thread without blocking or waking anything; commits them off the loop.

    `submit()` is a deque append. The writer thread wakes every LINGER_SECONDS (or at once on
    flush/close), takes everything queued and commits it in one transaction, so under load a row
    reaches the database within about one linger plus one commit, and the event loop never waits
    on SQLite. `close()` drains everything queued before returning.
    """

    def __init__(self, on_written=None) -> None:
        self._queue: collections.deque[LedgerEntry] = collections.deque()
        self._wake = threading.Event()
        self._markers: collections.deque[threading.Event] = collections.deque()
        self._stopping = False
        self._closed = False
        self._on_written = on_written
        self.written = 0
        self.failed_batches = 0
        self._thread = threading.Thread(target=self._run, name="hermit-ledger-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def submit(self, entry: LedgerEntry) -> None:
        if self._closed:
            raise RuntimeError("ledger writer is closed")
        self._queue.append(entry)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is committed."""
        marker = threading.Event()
        self._markers.append(marker)
        self._wake.set()
        return marker.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait(LINGER_SECONDS)
            self._wake.clear()
            stopping = self._stopping
            markers = []
            while self._markers:
                markers.append(self._markers.popleft())
            while self._queue:
                batch = []
                while self._queue and len(batch) < MAX_BATCH:
                    batch.append(self._queue.popleft())
                self._write(batch)
            for marker in markers:
                marker.set()
            if stopping and not self._queue:
                return

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
