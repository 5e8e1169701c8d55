"""Analytics: the one source of usage, summary, by-model, timeseries and recent-request numbers.

The CLI, the HTTP routes and the TUI all call AnalyticsService, so they show the same numbers.
Sums are SQL aggregates (hermit.store.analytics_queries); this module parses times and zones,
lays out the buckets (in Python, with zoneinfo, identical on SQLite and PostgreSQL) and shapes
the contract's objects. It imports neither quart nor httpx nor textual.
"""

from __future__ import annotations

import datetime as dt
import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from hermit.core.models import now_ms
from hermit.store import analytics_queries as q

BUCKETS = ("minute", "hour", "day", "week", "month")
VIEWS = ("summary", "by-model", "timeseries", "recent")
MAX_BUCKETS = 20_000
MAX_LIMIT = 10_000
UTC = dt.timezone.utc
_RELATIVE = re.compile(r"^(\d+)\s*(s|m|min|h|d|w)$", re.IGNORECASE)
_UNIT_MS = {"s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_FIXED_MS = {"minute": 60_000, "hour": 3_600_000}
_METRIC = {name: i for i, name in enumerate(q.METRICS)}
# Spans the database sums rows into before Python places them in buckets: the coarsest that
# every bucket boundary is a multiple of (UTC days, hours, half hours, rollup slots, minutes).
_GRANULES = (86_400_000, 3_600_000, 1_800_000, q.SLOT_MS, q.MINUTE_MS)


class QueryError(ValueError):
    """A bad filter, time, zone, bucket or limit; `param` names it (HTTP 400, CLI exit 2)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


# -- zones and times ----------------------------------------------------------------------


def parse_tz(text: str | None) -> tuple[dt.tzinfo, str]:
    """A zone from 'UTC', 'local', '+05:30' or an IANA name; returns (tzinfo, display name)."""
    raw = (text or "UTC").strip()
    if raw.upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return UTC, "UTC"
    if raw.lower() == "local":
        return _local_zone()
    match = _OFFSET.match(raw)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if hours > 23 or minutes > 59:
            raise QueryError(f"time zone offset {raw!r} is out of range", "tz")
        delta = dt.timedelta(hours=hours, minutes=minutes) * (-1 if sign == "-" else 1)
        name = f"{sign}{hours:02d}:{minutes:02d}"
        return (UTC, "UTC") if not delta else (dt.timezone(delta, name), name)
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(raw), raw
    except (ValueError, LookupError, OSError):
        raise QueryError(
            f"unknown time zone {raw!r}: use UTC, local, an offset like +05:30, or a name like Europe/Paris", "tz"
        ) from None


def _local_zone() -> tuple[dt.tzinfo, str]:
    """The machine's zone, by IANA name when it can be found (so DST is right)."""
    import os
    from zoneinfo import ZoneInfo

    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        link = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in link:
            candidates.append(link.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                zone = ZoneInfo(name)
            except (ValueError, LookupError, OSError):
                continue
            return (UTC, "UTC") if name in ("UTC", "Etc/UTC", "Etc/Universal", "Universal", "Zulu") else (zone, name)
    offset = dt.datetime.now().astimezone().utcoffset() or dt.timedelta(0)
    if not offset:
        return UTC, "UTC"
    minutes = int(offset.total_seconds() // 60)
    name = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return dt.timezone(offset, name), name


def parse_time(text: str, tz: dt.tzinfo = UTC, now: int | None = None, param: str = "since") -> int:
    """Epoch ms from ISO 8601 (no offset: in `tz`), a date, now/today/yesterday, or 15m/24h/7d ago."""
    raw = (text or "").strip()
    now = now_ms() if now is None else now
    if not raw:
        raise QueryError(f"{param} is empty", param)
    low = raw.lower()
    if low == "now":
        return now
    if low in ("today", "yesterday"):
        day = dt.datetime.fromtimestamp(now / 1000, tz).date()
        if low == "yesterday":
            day -= dt.timedelta(days=1)
        return _local_ms(dt.datetime(day.year, day.month, day.day), tz)
    match = _RELATIVE.match(raw)
    if match:
        return now - int(match.group(1)) * _UNIT_MS[match.group(2).lower()]
    if raw[-1:] == "z":
        raw = raw[:-1] + "Z"
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise QueryError(
            f"{param} {raw!r} is not a time: use ISO 8601 (2026-04-01T09:30:00, with or without an offset), "
            "a date, now, today, yesterday, or an age like 15m, 24h, 7d", param,
        ) from None
    if value.tzinfo is None:
        return _local_ms(value, tz)
    return (value - _EPOCH) // _MS


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_MS = dt.timedelta(milliseconds=1)


def _local_ms(naive: dt.datetime, tz: dt.tzinfo) -> int:
    """A wall-clock time in `tz` as epoch ms (a time skipped by DST counts with the earlier offset)."""
    return (naive.replace(tzinfo=tz) - _EPOCH) // _MS


def iso(ms: int, tz: dt.tzinfo = UTC) -> str:
    """Epoch ms as ISO 8601 in `tz` ('Z' for UTC, milliseconds only when there are some)."""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz)
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text[:-6] + "Z" if tz is UTC and text.endswith("+00:00") else text


# -- buckets ------------------------------------------------------------------------------


def _offset_ms(t: int, tz: dt.tzinfo) -> int:
    if tz is UTC:
        return 0
    offset = dt.datetime.fromtimestamp(t / 1000, tz).utcoffset()
    return int(offset.total_seconds() * 1000) if offset else 0


def bucket_floor(t: int, kind: str, tz: dt.tzinfo) -> int:
    """The start of the bucket holding instant t (epoch ms)."""
    if kind in _FIXED_MS:
        width = _FIXED_MS[kind]
        off = _offset_ms(t, tz)
        return t - ((t + off) % width)
    local = dt.datetime.fromtimestamp(t / 1000, tz).replace(tzinfo=None)
    day = local.date()
    if kind == "week":
        day -= dt.timedelta(days=day.weekday())
    elif kind == "month":
        day = day.replace(day=1)
    return _local_ms(dt.datetime(day.year, day.month, day.day), tz)


def _next_start(start: int, kind: str, tz: dt.tzinfo) -> int:
    if kind in _FIXED_MS:
        width = _FIXED_MS[kind]
        candidate = start + width
        if tz is not UTC and _offset_ms(candidate, tz) != _offset_ms(start, tz):
            candidate = max(bucket_floor(candidate, kind, tz), start + 1)
        return candidate
    local = dt.datetime.fromtimestamp(start / 1000, tz).replace(tzinfo=None).date()
    if kind == "day":
        nxt = local + dt.timedelta(days=1)
    elif kind == "week":
        nxt = local + dt.timedelta(days=7)
    else:
        nxt = (local.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    value = _local_ms(dt.datetime(nxt.year, nxt.month, nxt.day), tz)
    return value if value > start else start + 86_400_000


def bucket_starts(kind: str, tz: dt.tzinfo, since: int, until: int) -> list[int]:
    """Bucket starts covering [since, until), then the end of the last bucket."""
    if kind not in BUCKETS:
        raise QueryError(f"unknown bucket {kind!r}; choose one of: {', '.join(BUCKETS)}", "bucket")
    starts = [bucket_floor(since, kind, tz)]
    while starts[-1] < until:
        starts.append(_next_start(starts[-1], kind, tz))
        if len(starts) > MAX_BUCKETS + 1:
            raise QueryError(
                f"more than {MAX_BUCKETS:,} {kind} buckets between since and until: narrow the range "
                "(--since/--until) or use a larger bucket", "bucket",
            )
    if len(starts) == 1:
        starts.append(_next_start(starts[0], kind, tz))
    return starts


# -- the service --------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """What to report on: a time range, exact-match filters and the zone for buckets."""

    since: int | None = None
    until: int | None = None
    profile: str | None = None
    provider: str | None = None
    model: str | None = None
    tz: dt.tzinfo = UTC
    tz_name: str = "UTC"

    @property
    def scope(self) -> q.Scope:
        return q.Scope(self.since, self.until, self.profile, self.provider, self.model)


def make_query(since: str | None = None, until: str | None = None, profile: str | None = None,
               provider: str | None = None, model: str | None = None, tz: str | None = None,
               now: int | None = None) -> Query:
    """Parse user input (CLI flags or query parameters) into a Query; QueryError when bad."""
    zone, zone_name = parse_tz(tz)
    now = now_ms() if now is None else now
    since_ms = parse_time(since, zone, now, "since") if since not in (None, "") else None
    until_ms = parse_time(until, zone, now, "until") if until not in (None, "") else None
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise QueryError("since must be earlier than until", "until")
    if provider not in (None, ""):
        from hermit.core.providers import UnknownProvider, canonical_name

        try:
            provider = canonical_name(provider)
        except UnknownProvider:
            provider = provider.strip()  # a name the registry no longer knows may still be in old rows
    return Query(since_ms, until_ms, (profile or "").strip() or None, provider or None,
                 (model or "").strip() or None, zone, zone_name)


def _cost(requests: int, priced: int, nano: int) -> float | None:
    """Sum of the priced rows; None when there were requests and none of them had a price."""
    if requests and not priced:
        return None
    return nano / 1e9


def _metrics(values) -> dict[str, int]:
    return {name: int(values[i]) for name, i in _METRIC.items()}


class AnalyticsService:
    """Usage, summary, by-model, timeseries and recent requests over the ledger."""

    def usage(self, query: Query) -> dict[str, Any]:
        m = self._totals(query)
        return {
            "up": m["prompt_tokens"],
            "down": m["completion_tokens"],
            "total": m["total_tokens"],
            "requests": m["requests"],
            "successful": m["successful"],
            "cost_usd": _cost(m["requests"], m["priced_requests"], m["cost_nanousd"]),
        }

    def summary(self, query: Query) -> dict[str, Any]:
        m = self._totals(query)
        return {
            "requests": m["requests"],
            "successful": m["successful"],
            "failed": m["requests"] - m["successful"],
            "prompt_tokens": m["prompt_tokens"],
            "completion_tokens": m["completion_tokens"],
            "total_tokens": m["total_tokens"],
            "cached_tokens": m["cached_tokens"],
            "reasoning_tokens": m["reasoning_tokens"],
            "cost_usd": _cost(m["requests"], m["priced_requests"], m["cost_nanousd"]),
            "unpriced_requests": m["requests"] - m["priced_requests"],
            "unpriced_tokens": m["unpriced_tokens"],
            "avg_latency_ms": round(m["latency_us"] / m["requests"] / 1000, 3) if m["requests"] else None,
            "quick_test_requests": m["quick_tests"],
        }

    def by_model(self, query: Query) -> dict[str, Any]:
        items = []
        for row in q.aggregate(self._resolved(query).scope, "model"):
            m = _metrics(row[2:])
            if not m["requests"]:
                continue  # rollup rows emptied by a prune
            items.append({
                "provider": row[0],
                "model": row[1],
                "requests": m["requests"],
                "successful": m["successful"],
                "prompt_tokens": m["prompt_tokens"],
                "completion_tokens": m["completion_tokens"],
                "total_tokens": m["total_tokens"],
                "cost_usd": _cost(m["requests"], m["priced_requests"], m["cost_nanousd"]),
                "avg_latency_ms": round(m["latency_us"] / m["requests"] / 1000, 3),
                "cached_tokens": m["cached_tokens"],
                "reasoning_tokens": m["reasoning_tokens"],
                "unpriced_requests": m["requests"] - m["priced_requests"],
            })
        items.sort(key=lambda i: (-i["total_tokens"], -i["requests"], i["provider"], i["model"]))
        return {"data": items}

    def timeseries(self, query: Query, bucket: str = "hour") -> dict[str, Any]:
        """Buckets from since (default: the first row) to until (default: now), empty ones as zeros."""
        if bucket not in BUCKETS:
            raise QueryError(f"unknown bucket {bucket!r}; choose one of: {', '.join(BUCKETS)}", "bucket")
        query = self._resolved(query)
        until = query.until if query.until is not None else now_ms() + 1
        since = query.since
        if since is None:
            since = q.earliest(query.scope.with_range(None, until))
        result: dict[str, Any] = {"bucket": bucket, "tz": query.tz_name, "data": []}
        if since is None or since >= until:
            return result
        starts = bucket_starts(bucket, query.tz, since, until)
        granule = next((g for g in _GRANULES if not any(b % g for b in starts[:-1])), None)
        if granule is None:
            raise QueryError("this time zone's offset is not a whole number of minutes in that range", "tz")
        raw_only = granule < q.SLOT_MS
        sums = [[0] * len(q.METRICS) for _ in range(len(starts) - 1)]
        rows = q.aggregate(query.scope.with_range(since, until), "granule", raw_only=raw_only, granule_ms=granule)
        for row in rows:
            index = min(max(bisect_right(starts, int(row[0])) - 1, 0), len(sums) - 1)
            acc = sums[index]
            for i, value in enumerate(row[1:]):
                acc[i] += value
        for start, values in zip(starts, sums):
            m = _metrics(values)
            result["data"].append({
                "bucket_start": iso(start, query.tz),
                "requests": m["requests"],
                "prompt_tokens": m["prompt_tokens"],
                "completion_tokens": m["completion_tokens"],
                "total_tokens": m["total_tokens"],
                "cost_usd": _cost(m["requests"], m["priced_requests"], m["cost_nanousd"]),
                "successful": m["successful"],
                "cached_tokens": m["cached_tokens"],
                "reasoning_tokens": m["reasoning_tokens"],
                "unpriced_requests": m["requests"] - m["priced_requests"],
            })
        return result

    def requests(self, query: Query, limit: int = 100) -> dict[str, Any]:
        """The newest rows in scope, newest first, each the contract's ledger row."""
        from hermit.store.repos import ledger_entry

        limit = check_limit(limit)
        rows = q.recent(self._resolved(query).scope, limit)
        return {"data": [ledger_entry(row).to_json() for row in rows]}

    def iter_rows(self, query: Query):
        """Every row in scope, oldest first, as contract ledger rows (streamed in pages)."""
        from hermit.core.models import LEDGER_JSON_FIELDS, iso_from_ms

        columns = tuple("cost_nanousd" if f == "cost_usd" else f for f in LEDGER_JSON_FIELDS)
        at_created, at_cost, at_stream = (columns.index(c) for c in ("created_at", "cost_nanousd", "stream"))
        for values in q.iter_rows(self._resolved(query).scope, columns):
            row = list(values)
            row[at_created] = iso_from_ms(row[at_created])
            row[at_cost] = None if row[at_cost] is None else row[at_cost] / 1e9
            row[at_stream] = bool(row[at_stream])
            yield dict(zip(LEDGER_JSON_FIELDS, row))

    # -- helpers ---------------------------------------------------------------------------

    def _totals(self, query: Query) -> dict[str, int]:
        rows = q.aggregate(self._resolved(query).scope)
        return _metrics(rows[0] if rows else [0] * len(q.METRICS))

    @staticmethod
    def _resolved(query: Query) -> Query:
        """A numeric --profile that names no profile but is a profile's id means that profile."""
        profile = query.profile
        if profile and profile.isdigit():
            from hermit.store.tables import ProfileRow

            if ProfileRow.get_or_none(ProfileRow.name == profile) is None:
                row = ProfileRow.get_or_none(ProfileRow.id == int(profile))
                if row is not None:
                    return Query(query.since, query.until, row.name, query.provider, query.model, query.tz,
                                 query.tz_name)
        return query


def check_limit(limit: Any) -> int:
    try:
        value = int(limit)
    except (TypeError, ValueError):
        raise QueryError(f"limit must be a whole number, got {limit!r}", "limit") from None
    if not 1 <= value <= MAX_LIMIT:
        raise QueryError(f"limit must be between 1 and {MAX_LIMIT:,}, got {value}", "limit")
    return value
