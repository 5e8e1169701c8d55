"""Human output for the analytics commands (tables read at a glance) and the export writers."""

from __future__ import annotations

import csv
import datetime as dt
import json
from typing import Any, Iterable, TextIO

from hermit.cli.common import table
from hermit.core.models import LEDGER_JSON_FIELDS

BAR_WIDTH = 24


def n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def money(usd: float | None, unpriced: int = 0) -> str:
    """'$12.35', '$0.0042', 'unpriced'; a '*' when unpriced requests are left out of the sum."""
    if usd is None:
        return "unpriced"
    mark = "*" if unpriced else ""
    if usd == 0:
        return f"$0.00{mark}"
    if abs(usd) >= 1:
        return f"${usd:,.2f}{mark}"
    if abs(usd) >= 0.01:
        return f"${usd:.4f}{mark}"
    return f"${usd:.6f}{mark}"


def price(usd: float | None) -> str:
    if usd is None:
        return "-"
    text = f"{usd:,.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _when(ms_value: int, query) -> str:
    return dt.datetime.fromtimestamp(ms_value / 1000, query.tz).strftime("%Y-%m-%d %H:%M:%S")


def _stamp(text: str | None) -> str:
    """An ISO time from a JSON object, shortened for a table."""
    if not text:
        return "-"
    return text.replace("T", " ")[:19]


def describe(query, title: str) -> str:
    """'Summary, 2026-04-01 00:00:00 to now, model gpt-4o (times in UTC)'."""
    if query.since is None and query.until is None:
        span = "all time"
    else:
        start = _when(query.since, query) if query.since is not None else "the beginning"
        end = _when(query.until, query) if query.until is not None else "now"
        span = f"{start} to {end}"
    pairs = (("profile", query.profile), ("provider", query.provider), ("model", query.model))
    filters = [f"{k} {v}" for k, v in pairs if v]
    return f"{title}, {span}{', ' + ', '.join(filters) if filters else ''} (times in {query.tz_name})"


def _pairs(lines: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in lines)
    value_width = max(len(v) for _, v in lines)
    return "\n".join(f"  {k.ljust(width)}  {v.rjust(value_width)}" for k, v in lines)


def _unpriced_note(unpriced: int, tokens: int) -> str:
    if not unpriced:
        return ""
    return (f"\n* not included: {unpriced:,} unpriced request{'s' if unpriced != 1 else ''} "
            f"({tokens:,} tokens); give their models a price with `hermit prices set`")


def usage(summary: dict[str, Any], query) -> str:
    lines = [
        ("up (prompt tokens)", n(summary["prompt_tokens"])),
        ("down (completion tokens)", n(summary["completion_tokens"])),
        ("total tokens", n(summary["total_tokens"])),
        ("requests", n(summary["requests"])),
        ("successful", n(summary["successful"])),
        ("cost", money(summary["cost_usd"], summary["unpriced_requests"])),
    ]
    return (describe(query, "Usage") + "\n" + _pairs(lines)
            + _unpriced_note(summary["unpriced_requests"], summary["unpriced_tokens"]))


def summary(data: dict[str, Any], query) -> str:
    lines = [
        ("requests", n(data["requests"])),
        ("  successful", n(data["successful"])),
        ("  failed", n(data["failed"])),
        ("  quick tests", n(data["quick_test_requests"])),
        ("prompt tokens", n(data["prompt_tokens"])),
        ("  cached", n(data["cached_tokens"])),
        ("completion tokens", n(data["completion_tokens"])),
        ("  reasoning", n(data["reasoning_tokens"])),
        ("total tokens", n(data["total_tokens"])),
        ("cost", money(data["cost_usd"], data["unpriced_requests"])),
        ("avg latency", ms(data["avg_latency_ms"])),
    ]
    return (describe(query, "Summary") + "\n" + _pairs(lines)
            + _unpriced_note(data["unpriced_requests"], data["unpriced_tokens"]))


def by_model(data: dict[str, Any], query) -> str:
    items = data["data"]
    head = describe(query, "By model")
    if not items:
        return head + "\n  no requests"
    rows = [[i["provider"] or "-", i["model"] or "-", n(i["requests"]), n(i["successful"]), n(i["prompt_tokens"]),
             n(i["completion_tokens"]), n(i["total_tokens"]), money(i["cost_usd"], i.get("unpriced_requests", 0)),
             ms(i["avg_latency_ms"])] for i in items]
    requests = sum(i["requests"] for i in items)
    priced = [i["cost_usd"] for i in items if i["cost_usd"] is not None]
    unpriced = sum(i.get("unpriced_requests", 0) for i in items)
    latency = sum(i["avg_latency_ms"] * i["requests"] for i in items) / requests if requests else None
    cost = (sum(round(c * 1e9) for c in priced) / 1e9) if priced else (None if unpriced else 0.0)
    rows.append(["TOTAL", "", n(requests), n(sum(i["successful"] for i in items)),
                 n(sum(i["prompt_tokens"] for i in items)), n(sum(i["completion_tokens"] for i in items)),
                 n(sum(i["total_tokens"] for i in items)), money(cost, unpriced), ms(latency)])
    text = table(["PROVIDER", "MODEL", "REQUESTS", "OK", "PROMPT", "COMPLETION", "TOTAL", "COST", "AVG LATENCY"],
                 rows, right=range(2, 9))
    note = f"\n* leaves out {unpriced:,} unpriced requests" if unpriced and priced else ""
    return head + "\n" + _with_total_rule(text) + note


def _with_total_rule(text: str) -> str:
    lines = text.split("\n")
    return "\n".join(lines[:-1] + [lines[1], lines[-1]])


def timeseries(data: dict[str, Any], query) -> str:
    points = data["data"]
    head = describe(query, f"Timeseries by {data['bucket']}")
    if not points:
        return head + "\n  no requests"
    top = max(p["total_tokens"] for p in points) or 1
    rows = []
    for p in points:
        bar = "█" * round(BAR_WIDTH * p["total_tokens"] / top) if p["total_tokens"] else ""
        rows.append([_stamp(p["bucket_start"]), n(p["requests"]), n(p["prompt_tokens"]), n(p["completion_tokens"]),
                     n(p["total_tokens"]), money(p["cost_usd"], p.get("unpriced_requests", 0)), bar])
    priced = [p["cost_usd"] for p in points if p["cost_usd"] is not None]
    unpriced = sum(p.get("unpriced_requests", 0) for p in points)
    cost = (sum(round(c * 1e9) for c in priced) / 1e9) if priced else (None if unpriced else 0.0)
    rows.append(["TOTAL", n(sum(p["requests"] for p in points)), n(sum(p["prompt_tokens"] for p in points)),
                 n(sum(p["completion_tokens"] for p in points)), n(sum(p["total_tokens"] for p in points)),
                 money(cost, unpriced), ""])
    text = table(["BUCKET START", "REQUESTS", "PROMPT", "COMPLETION", "TOTAL", "COST", ""], rows, right=range(1, 6))
    note = f"\n* leaves out {unpriced:,} unpriced requests" if unpriced and priced else ""
    return head + "\n" + _with_total_rule(text) + note


def recent(data: dict[str, Any], query) -> str:
    rows_in = data["data"]
    head = describe(query, "Recent requests, newest first")
    if not rows_in:
        return head + "\n  no requests"
    rows = []
    for r in rows_in:
        when = dt.datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")).astimezone(query.tz)
        status = str(r["status_code"]) + (" !" if r["error"] else "")
        rows.append([n(r["id"]), when.strftime("%Y-%m-%d %H:%M:%S"), r["profile_name"] or "-", r["provider"] or "-",
                     r["upstream_model"] or "-", status, n(r["prompt_tokens"]), n(r["completion_tokens"]),
                     n(r["total_tokens"]), money(r["cost_usd"]), ms(r["latency_ms"]), r["client"] or "-"])
    text = table(["ID", "TIME", "PROFILE", "PROVIDER", "MODEL", "STATUS", "PROMPT", "COMPLETION", "TOTAL", "COST",
                  "LATENCY", "CLIENT"], rows, right=(0, 6, 7, 8, 9, 10))
    return head + "\n" + text + "\n(! = the request failed; see `--json` for the error)"


def report(view: str, data: dict[str, Any], query) -> str:
    return {"summary": summary, "by-model": by_model, "timeseries": timeseries, "recent": recent}[view](data, query)


def price_scope(p: dict[str, Any]) -> str:
    scope = f" (provider {p['provider']})" if p["provider"] else f" (profile {p['profile']})" if p["profile"] else ""
    return f"{p['model']}{scope}"


def prices(items: list[dict[str, Any]]) -> str:
    if not items:
        return "no prices match"
    rows = [[p["id"] if p["id"] is not None else "-", p["source"], p["provider"] or "any", p["profile"] or "-",
             p["model"], price(p["input"]), price(p["output"]), price(p["cached_input"]), price(p["cache_write"]),
             (p["as_of"] or "-")[:10]] for p in items]
    return table(["ID", "SOURCE", "PROVIDER", "PROFILE", "MODEL", "INPUT/1M", "OUTPUT/1M", "CACHED/1M",
                  "CACHE WRITE/1M", "AS OF"], rows, right=(0, 5, 6, 7, 8)) + (
        "\n(USD per million tokens; missing cached/cache-write rates bill at the input rate)")


# -- export -------------------------------------------------------------------------------


def write_rows(rows: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> int:
    """Write ledger rows as csv, jsonl or one JSON document ({"data": [...]}), as they come."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")  # None is written as an empty cell
        writer.writerow(LEDGER_JSON_FIELDS)
        for row in rows:
            row["stream"] = "true" if row["stream"] else "false"
            writer.writerow([row[k] for k in LEDGER_JSON_FIELDS])
            count += 1
    elif fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row) + "\n")
            count += 1
    else:
        out.write('{"data": [')
        for row in rows:
            out.write(("\n" if count == 0 else ",\n") + json.dumps(row))
            count += 1
        out.write("\n]}\n" if count else "]}\n")
    return count
