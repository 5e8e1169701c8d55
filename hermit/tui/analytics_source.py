"""Where the Analytics panel gets its numbers: `AnalyticsService`, the service behind `hermit report`.

`AnalyticsSource` is the one place the TUI talks to analytics. It runs on the TUI's database
thread and turns the service's JSON-shaped answers into what the charts draw (epoch ms bucket
starts, failures per bucket), so the panel shows exactly what `hermit report` prints for the
same --since/--until.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from hermit.services.analytics import AnalyticsService, Query

# key, label, seconds (None: everything), bucket
PERIODS: tuple[tuple[str, str, int | None, str], ...] = (
    ("hour", "last hour", 3600, "minute"),
    ("day", "last 24 h", 86400, "hour"),
    ("week", "last 7 days", 7 * 86400, "hour"),
    ("month", "last 30 days", 30 * 86400, "day"),
    ("all", "all time", None, "day"),
)
PERIOD_KEYS = tuple(p[0] for p in PERIODS)


def period_info(key: str) -> tuple[str, str, int | None, str]:
    for p in PERIODS:
        if p[0] == key:
            return p
    raise ValueError(f"unknown period {key!r}")


@dataclass
class AnalyticsSnapshot:
    """Everything the panel draws for one period."""

    period: str
    since_ms: int | None
    until_ms: int
    bucket: str
    summary: dict[str, Any]
    by_model: list[dict[str, Any]]
    series: list[dict[str, Any]] = field(default_factory=list)


def _ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


class AnalyticsSource:
    """Summary, by-model and time series for a period ending at `now`."""

    def __init__(self, services) -> None:
        self.services = services
        self.service = AnalyticsService()

    @staticmethod
    def query(since_ms: int | None, until_ms: int | None, tz) -> Query:
        tz = tz or dt.timezone.utc
        name = "UTC" if tz is dt.timezone.utc else getattr(tz, "key", None) or str(tz)
        return Query(since=since_ms, until=until_ms, tz=tz, tz_name=name)

    def summary(self, since_ms: int | None, until_ms: int, tz) -> dict[str, Any]:
        return self.service.summary(self.query(since_ms, until_ms, tz))

    def snapshot(self, period: str, now_ms: int, tz) -> AnalyticsSnapshot:
        """The numbers for [now - period, now]: `hermit report --since <since> --until <until>`."""
        _, _, seconds, bucket = period_info(period)
        until = now_ms + 1  # until is exclusive: include rows created at `now`
        since = None if seconds is None else now_ms - seconds * 1000
        query = self.query(since, until, tz)
        summary = self.service.summary(query)
        by_model = self.service.by_model(query)["data"]
        series = self.service.timeseries(query, bucket)["data"]
        if seconds is None and series:
            better = "hour" if len(series) <= 2 else "week" if len(series) > 120 else bucket
            if better != bucket:
                bucket, series = better, self.service.timeseries(query, better)["data"]
        for item in series:
            item["bucket_start"] = _ms(item["bucket_start"])
            item["failed"] = item["requests"] - item.get("successful", item["requests"])
        return AnalyticsSnapshot(period, since, until, bucket, summary, by_model, series)
