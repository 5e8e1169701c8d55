"""The live feed: bus events land in a deque in O(1); the UI folds them into rows on its own tick.

The bus calls `LiveFeed.receive` synchronously inside the proxy's request path, so that is a
bare `deque.append`. Everything else (rows, counters, filters) happens in `drain()`, which
the app calls a few times a second, never once per request.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Iterable

from hermit.core.models import LedgerEntry
from hermit.services.events import (
    ProfileActivated,
    RequestFinished,
    RequestProgress,
    RequestStarted,
)

STATUS_FILTERS = ("all", "ok", "errors", "active")


@dataclass(slots=True)
class LiveRow:
    """One request as the Live panel shows it; `status` is None while it is in flight."""

    request_id: str
    started_ms: int
    endpoint: str
    stream: bool
    provider: str
    model: str
    profile: str | None
    client: str | None
    status: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    error: str | None = None
    entry: LedgerEntry | None = None

    @property
    def active(self) -> bool:
        return self.status is None

    @property
    def failed(self) -> bool:
        return self.status is not None and (self.status >= 400 or bool(self.error))

    @classmethod
    def from_entry(cls, e: LedgerEntry) -> "LiveRow":
        row = cls(e.request_id, e.created_at, e.endpoint, e.stream, e.provider, e.upstream_model,
                  e.profile_name, e.client)
        row.finish(e)
        return row

    def finish(self, e: LedgerEntry) -> None:
        self.status = e.status_code
        self.model = e.upstream_model or self.model
        self.prompt_tokens = e.prompt_tokens
        self.completion_tokens = e.completion_tokens
        self.total_tokens = e.total_tokens
        self.cost_usd = e.cost_usd
        self.latency_ms = e.latency_ms
        self.ttft_ms = e.ttft_ms
        self.error = e.error
        self.entry = e


@dataclass(frozen=True, slots=True)
class LiveFilter:
    status: str = "all"
    model: str | None = None
    text: str = ""

    @property
    def is_empty(self) -> bool:
        return self.status == "all" and self.model is None and not self.text

    def matches(self, row: LiveRow) -> bool:
        if self.status == "ok" and (row.active or row.failed):
            return False
        if self.status == "errors" and not row.failed:
            return False
        if self.status == "active" and not row.active:
            return False
        if self.model is not None and row.model != self.model:
            return False
        if self.text:
            hay = " ".join(
                str(v) for v in (row.model, row.profile, row.client, row.provider, row.endpoint, row.status,
                                 row.error, row.request_id, row.entry.client_model if row.entry else None) if v
            ).lower()
            return all(word in hay for word in self.text.lower().split())
        return True

    def describe(self) -> str:
        parts = []
        if self.status != "all":
            parts.append(f"status={self.status}")
        if self.model is not None:
            parts.append(f"model={self.model}")
        if self.text:
            parts.append(f"text={self.text!r}")
        return " ".join(parts)


class LiveFeed:
    """Rows of recent requests plus the running counters the status bar shows."""

    def __init__(self, clock, capacity: int = 2000) -> None:
        self.clock = clock
        self.capacity = capacity
        self.pending: collections.deque = collections.deque(maxlen=500_000)
        self.receive = self.pending.append  # the bus subscriber: O(1), never raises
        self.rows: collections.OrderedDict[str, LiveRow] = collections.OrderedDict()
        self.version = 0  # bumps whenever rows change
        self.finished_total = 0  # finished requests seen (drives analytics auto-refresh)
        self.created_total = 0  # rows ever created (the Live panel's 'new since pause')
        self.in_flight = 0  # rows started and not finished
        self.last_drained = 0  # events folded by the last drain() (how busy the proxy is)
        self.models: dict[str, None] = {}
        self.profile_events = 0  # ProfileActivated seen
        self.profiles_used: dict[int, int] = {}  # profile id -> newest request start (ms)
        self._finishes: collections.deque[int] = collections.deque(maxlen=200_000)  # finish times (ms)
        self.today_start = clock.start_of_day_ms()
        self.today_tokens = 0
        self.today_cost = 0.0
        self.today_unpriced = 0
        self.today_requests = 0
        self._baseline_until: int | None = None

    # -- intake (event loop, cheap) --------------------------------------------------------

    def drain(self) -> int:
        """Fold everything received since the last call into rows and counters."""
        pending = self.pending
        n = self.last_drained = len(pending)
        if not n:
            self._roll_day()
            return 0
        rows = self.rows
        for _ in range(n):
            ev = pending.popleft()
            kind = type(ev)
            if kind is RequestFinished:
                self._finished(ev.entry)
            elif kind is RequestStarted:
                if ev.request_id not in rows:
                    self.created_total += 1
                    self.in_flight += 1
                    rows[ev.request_id] = LiveRow(ev.request_id, ev.started_at, ev.endpoint, ev.stream, ev.provider,
                                                  ev.upstream_model, ev.profile_name, ev.client)
                    self.models.setdefault(ev.upstream_model, None)
            elif kind is RequestProgress:
                row = rows.get(ev.request_id)
                if row is not None and row.status is None:
                    row.completion_tokens = ev.completion_tokens
            elif kind is ProfileActivated:
                self.profile_events += 1
        self._trim()
        self._roll_day()
        self.version += 1
        return n

    def add_entries(self, entries: Iterable[LedgerEntry], *, backfill: bool = False) -> None:
        """Finished rows read from the database: backfill (older than anything live) or watch mode."""
        rows = self.rows
        added = []
        for e in entries:
            if e.request_id in rows:
                continue
            row = LiveRow.from_entry(e)
            rows[e.request_id] = row
            added.append(e.request_id)
            self.created_total += 0 if backfill else 1
            self.models.setdefault(row.model, None)
            if e.profile_id is not None:
                self.profiles_used[e.profile_id] = max(self.profiles_used.get(e.profile_id, 0), e.created_at)
            if not backfill:
                self.finished_total += 1
                self._count(e)
        if backfill:
            for finish in sorted(self._finish_ms(rows[rid].entry) for rid in added):
                self._finishes.append(finish)
            # backfill is newest first; move each to the front so the oldest ends up first
            for rid in added:
                rows.move_to_end(rid, last=False)
        self._trim()
        self.version += 1

    def _finished(self, e: LedgerEntry) -> None:
        row = self.rows.get(e.request_id)
        if row is None:
            self.created_total += 1
            row = self.rows[e.request_id] = LiveRow.from_entry(e)
        else:
            if row.status is None:
                self.in_flight -= 1
            row.finish(e)
        self.models.setdefault(row.model, None)
        if e.profile_id is not None:
            self.profiles_used[e.profile_id] = max(self.profiles_used.get(e.profile_id, 0), e.created_at)
        self.finished_total += 1
        self._count(e)

    @staticmethod
    def _finish_ms(e: LedgerEntry) -> int:
        return e.created_at + int(e.latency_ms or 0)

    def _count(self, e: LedgerEntry) -> None:
        self._finishes.append(self._finish_ms(e))
        if e.created_at >= self.today_start and (self._baseline_until is None or e.created_at >= self._baseline_until):
            self.today_requests += 1
            self.today_tokens += e.total_tokens or 0
            if e.cost_usd is None:
                self.today_unpriced += 1
            else:
                self.today_cost += e.cost_usd

    def _trim(self) -> None:
        rows = self.rows
        excess = len(rows) - self.capacity
        if excess <= 0:
            return
        # drop the oldest finished rows; keep in-flight ones whatever their age
        for rid in list(rows.keys())[: excess * 2]:
            if excess <= 0:
                break
            if rows[rid].status is not None:
                del rows[rid]
                excess -= 1

    def _roll_day(self) -> None:
        start = self.clock.start_of_day_ms()
        if start != self.today_start:
            self.today_start = start
            self.today_tokens = self.today_requests = self.today_unpriced = 0
            self.today_cost = 0.0
            self._baseline_until = None

    # -- baseline from the database ---------------------------------------------------------

    def set_today_baseline(self, summary: dict, until_ms: int) -> None:
        """Today's totals up to `until_ms` from the ledger; live events after it add on top."""
        live_tokens, live_cost, live_unpriced, live_requests = self._live_since(until_ms)
        self._baseline_until = until_ms
        self.today_tokens = int(summary.get("total_tokens") or 0) + live_tokens
        self.today_cost = float(summary.get("cost_usd") or 0.0) + live_cost
        self.today_unpriced = int(summary.get("unpriced_requests") or 0) + live_unpriced
        self.today_requests = int(summary.get("requests") or 0) + live_requests

    def _live_since(self, until_ms: int) -> tuple[int, float, int, int]:
        tokens = unpriced = requests = 0
        cost = 0.0
        for row in self.rows.values():
            e = row.entry
            if e is not None and e.created_at >= until_ms and e.created_at >= self.today_start:
                requests += 1
                tokens += e.total_tokens or 0
                if e.cost_usd is None:
                    unpriced += 1
                else:
                    cost += e.cost_usd
        return tokens, cost, unpriced, requests

    # -- reads ------------------------------------------------------------------------------

    def requests_per_minute(self) -> int:
        """Requests that finished in the last 60 s."""
        horizon = self.clock.now_ms() - 60_000
        finishes = self._finishes
        while finishes and finishes[0] < horizon:
            finishes.popleft()
        return len(finishes)

    def view(self, flt: LiveFilter) -> list[LiveRow]:
        """Rows newest first, filtered."""
        if flt.is_empty:
            return list(reversed(self.rows.values()))
        return [r for r in reversed(self.rows.values()) if flt.matches(r)]
