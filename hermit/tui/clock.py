"""Time for the TUI: the system clock, or a frozen one for snapshots and tests."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo


class SystemClock:
    """Wall-clock time in the local time zone (or `tz`)."""

    def __init__(self, tz: dt.tzinfo | None = None) -> None:
        if tz is None:
            from hermit.services.analytics import (
                parse_tz,  # the machine's zone by IANA name (DST-aware)
            )

            tz = parse_tz("local")[0]
        self.tz = tz

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now_ms() / 1000, tz=self.tz)

    def local(self, ms: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ms / 1000, tz=self.tz)

    def start_of_day_ms(self, ms: int | None = None) -> int:
        day = self.local(self.now_ms() if ms is None else ms).replace(hour=0, minute=0, second=0, microsecond=0)
        return int(day.timestamp() * 1000)

    @property
    def tz_name(self) -> str:
        return "UTC" if self.tz is dt.timezone.utc else getattr(self.tz, "key", None) or str(self.tz)


class FrozenClock(SystemClock):
    """A clock that only moves when told to (deterministic screens)."""

    def __init__(self, at: dt.datetime | int, tz: str | dt.tzinfo = "UTC") -> None:
        if isinstance(tz, str):
            tz = dt.timezone.utc if tz.upper() == "UTC" else ZoneInfo(tz)
        super().__init__(tz)
        self._ms = at if isinstance(at, int) else int(at.timestamp() * 1000)

    def now_ms(self) -> int:
        return self._ms

    def advance(self, seconds: float) -> None:
        self._ms += int(seconds * 1000)
