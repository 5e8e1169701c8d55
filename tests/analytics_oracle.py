"""Test data and independent sums: what every analytics number must be, computed from the rows."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

from hermit.core.models import LedgerEntry

UTC = dt.timezone.utc
QUICK = "hermit-quick-test"
# (provider, upstream model, profile): priced, unpriced (no price known) and local (free).
MODELS = (
    ("openai", "gpt-4o", "main"),
    ("openai", "gpt-4o-mini", "main"),
    ("anthropic", "claude-sonnet-4", "work"),
    ("openrouter", "vendor/mystery", "work"),
    ("ollama", "llama3:8b", None),
)
UNPRICED_MODEL = "vendor/mystery"


def make_rows(seed: int, n: int, start_ms: int, span_ms: int, extra_times: tuple[int, ...] = ()) -> list[LedgerEntry]:
    """Random rows: failures, cut streams, cached and reasoning tokens, unpriced rows, quick tests."""
    rng = random.Random(seed)
    times = [start_ms + rng.randrange(span_ms) for _ in range(n)] + list(extra_times)
    rows = []
    for i, t in enumerate(times):
        provider, model, profile = rng.choice(MODELS)
        status = rng.choice((200,) * 8 + (429, 500))
        error = None if status < 400 else f"upstream {status}"
        if status == 200 and rng.random() < 0.05:
            error = "stream ended early"
        prompt, completion = rng.randrange(0, 5000), rng.randrange(0, 2000)
        cached = rng.choice((None, rng.randrange(0, prompt + 1)))
        reasoning = rng.choice((None, rng.randrange(0, completion + 1)))
        nano = None if model == UNPRICED_MODEL else (0 if provider == "ollama" else rng.randrange(1, 50_000_000))
        rows.append(
            LedgerEntry(
                request_id=f"r{seed}-{i}",
                created_at=t,
                provider=provider,
                upstream_model=model,
                endpoint="chat",
                stream=bool(i % 2),
                status_code=status,
                profile_id=None,
                profile_name=profile,
                client_model=model,
                prompt_tokens=prompt,
                completion_tokens=completion,
                total_tokens=prompt + completion,
                cached_tokens=cached,
                reasoning_tokens=reasoning,
                cost_usd=None if nano is None else nano / 1e9,
                latency_ms=round(rng.uniform(0.5, 4000), 3),
                usage_source="upstream",
                client=QUICK if rng.random() < 0.05 else "test-client",
                error=error,
            )
        )
    return rows


def nano(entry: LedgerEntry) -> int | None:
    return None if entry.cost_usd is None else round(entry.cost_usd * 1e9)


def select(rows, since=None, until=None, profile=None, provider=None, model=None) -> list[LedgerEntry]:
    return [
        r
        for r in rows
        if (since is None or r.created_at >= since)
        and (until is None or r.created_at < until)
        and (profile is None or r.profile_name == profile)
        and (provider is None or r.provider == provider)
        and (model is None or r.upstream_model == model)
    ]


def _cost(rows) -> float | None:
    priced = [nano(r) for r in rows if r.cost_usd is not None]
    if rows and not priced:
        return None
    return sum(priced) / 1e9


def summary(rows) -> dict:
    ok = [r for r in rows if r.status_code < 400 and r.error is None]
    unpriced = [r for r in rows if r.cost_usd is None]
    latency_us = sum(round(r.latency_ms * 1000) for r in rows)
    return {
        "requests": len(rows),
        "successful": len(ok),
        "failed": len(rows) - len(ok),
        "prompt_tokens": sum(r.prompt_tokens for r in rows),
        "completion_tokens": sum(r.completion_tokens for r in rows),
        "total_tokens": sum(r.total_tokens for r in rows),
        "cached_tokens": sum(r.cached_tokens or 0 for r in rows),
        "reasoning_tokens": sum(r.reasoning_tokens or 0 for r in rows),
        "cost_usd": _cost(rows),
        "unpriced_requests": len(unpriced),
        "unpriced_tokens": sum(r.total_tokens for r in unpriced),
        "avg_latency_ms": round(latency_us / len(rows) / 1000, 3) if rows else None,
        "quick_test_requests": sum(1 for r in rows if r.client == QUICK),
    }


def usage(rows) -> dict:
    s = summary(rows)
    return {
        "up": s["prompt_tokens"],
        "down": s["completion_tokens"],
        "total": s["total_tokens"],
        "requests": s["requests"],
        "successful": s["successful"],
        "cost_usd": s["cost_usd"],
    }


def by_model(rows) -> list[dict]:
    groups = defaultdict(list)
    for r in rows:
        groups[(r.provider, r.upstream_model)].append(r)
    items = []
    for (provider, model), group in groups.items():
        s = summary(group)
        items.append(
            {
                "provider": provider,
                "model": model,
                "requests": s["requests"],
                "successful": s["successful"],
                "prompt_tokens": s["prompt_tokens"],
                "completion_tokens": s["completion_tokens"],
                "total_tokens": s["total_tokens"],
                "cost_usd": s["cost_usd"],
                "avg_latency_ms": s["avg_latency_ms"],
            }
        )
    return sorted(items, key=lambda i: (-i["total_tokens"], -i["requests"], i["provider"], i["model"]))


def label(ms: int, kind: str, tz: dt.tzinfo) -> str:
    """The wall-clock start of the bucket holding `ms`, written the way the API writes it."""
    local = dt.datetime.fromtimestamp(ms / 1000, tz)
    if kind == "minute":
        start = local.replace(second=0, microsecond=0)
    elif kind == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        day = local.date()
        if kind == "week":
            day -= dt.timedelta(days=day.weekday())
        elif kind == "month":
            day = day.replace(day=1)
        start = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
    text = start.isoformat(timespec="seconds")
    return text[:-6] + "Z" if tz is UTC and text.endswith("+00:00") else text


def timeseries(rows, kind: str, tz: dt.tzinfo, since: int, until: int) -> list[tuple[str, dict]]:
    """Every bucket from since to until (found by walking the range minute by minute), with sums."""
    step = 60_000 if kind in ("minute", "hour") else 900_000
    labels: list[str] = []
    t = since - since % 60_000
    while t < until:
        name = label(t, kind, tz)
        if not labels or labels[-1] != name:
            labels.append(name)
        t += step
    groups = defaultdict(list)
    for r in select(rows, since, until):
        groups[label(r.created_at, kind, tz)].append(r)
    assert set(groups) <= set(labels)
    out = []
    for name in labels:
        s = summary(groups.get(name, []))
        out.append(
            (name, {k: s[k] for k in ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")})
        )
    return out


def ms(text: str) -> int:
    """ISO 8601 (no offset: UTC) as epoch ms."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)
