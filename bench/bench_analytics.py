#!/usr/bin/env python3
"""Hermit analytics benchmark on SQLite: a generated ledger of 1,000,000 rows (or 10,000,000).

Generates rows through the real schema (the rollup triggers fire on every insert, as they do for
the proxy's ledger writer), then prints, with targets and PASS/MISS:

1. the time of `usage`, `report --view by-model`, `--view timeseries --bucket day` over the whole
   range and over the last 24 h, and `--view recent` (the AnalyticsService calls behind them:
   median of --repeat warm runs, and the first, cold, run), plus `hermit usage` as a process;
2. the database size per million rows (file, ledger table and indexes, rollups);
3. the ledger writer's commit latency under a steady load, alone and with reports running beside
   it in the same process (as the server's /analytics routes do);
4. whether the rollups agree with the raw rows (every slot, provider, model and profile).

    python bench/bench_analytics.py                      # 1,000,000 rows over 30 days
    python bench/bench_analytics.py --rows 10000000 --days 365
    python bench/bench_analytics.py --db /tmp/ledger.db --keep   # reuse it next time with --reuse
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

TARGET_AGGREGATE_MS = 300.0
TARGET_RECENT_MS = 50.0
MODELS = (  # (provider, model, profile, share)
    ("openai", "gpt-4o", "prod", 0.25),
    ("openai", "gpt-4o-mini", "prod", 0.25),
    ("openai", "gpt-4.1", "batch", 0.05),
    ("anthropic", "claude-sonnet-4", "prod", 0.15),
    ("deepseek", "deepseek-chat", "batch", 0.1),
    ("openrouter", "meta-llama/llama-3.3-70b-instruct", "research", 0.05),
    ("google-gemini", "gemini-2.5-flash", "research", 0.05),
    ("ollama", "qwen2.5:7b", "local", 0.1),
)
CLIENTS = ("openai-python", "openai-node", "curl", "langchain", "hermit-quick-test")
COLUMNS = (
    "request_id",
    "created_at",
    "profile_id",
    "profile_name",
    "provider",
    "upstream_model",
    "client_model",
    "endpoint",
    "stream",
    "status_code",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "cost_nanousd",
    "upstream_cost_usd",
    "latency_ms",
    "ttft_ms",
    "overhead_ms",
    "usage_source",
    "client",
    "project",
    "user",
    "error",
)


def generate(path: str, rows: int, days: int, seed: int = 1) -> float:
    """Insert `rows` rows spread over the last `days` days; returns rows per second."""
    from hermit.core.models import now_ms
    from hermit.store.db import close_database, open_database

    open_database(f"sqlite:///{path}")
    close_database()
    rng = random.Random(seed)
    weights = [m[3] for m in MODELS]
    end = now_ms()
    start = end - days * 86_400_000
    step = (end - start) / rows
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=wal")
    con.execute("PRAGMA synchronous=normal")
    sql = f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    began = time.perf_counter()
    batch = []
    profile_ids = {"prod": 1, "batch": 2, "research": 3, "local": 4}
    for i in range(rows):
        provider, model, profile, _ = rng.choices(MODELS, weights)[0]
        prompt = int(rng.lognormvariate(6.5, 1.0))
        completion = int(rng.lognormvariate(5.0, 1.0))
        failed = rng.random() < 0.03
        status = rng.choice((429, 500, 502)) if failed else 200
        cached = rng.randrange(prompt + 1) if rng.random() < 0.4 else None
        reasoning = (
            rng.randrange(completion + 1) if model in ("gpt-4.1", "deepseek-chat") and rng.random() < 0.5 else None
        )
        cost = (
            None
            if provider == "openrouter"
            else (0 if provider == "ollama" else (prompt * 2500 + completion * 10000) // 1000)
        )
        latency = round(rng.lognormvariate(6.0, 0.7), 3)
        batch.append(
            (
                uuid.UUID(int=rng.getrandbits(128)).hex,
                int(start + i * step),
                profile_ids[profile],
                profile,
                provider,
                model,
                model,
                "chat",
                i % 3 == 0,
                status,
                0 if failed else prompt,
                0 if failed else completion,
                0 if failed else prompt + completion,
                cached,
                reasoning,
                None,
                cost,
                None,
                latency,
                round(latency / 5, 3) if i % 3 == 0 else None,
                round(rng.uniform(0.2, 2.0), 3),
                "none" if failed else "upstream",
                rng.choice(CLIENTS),
                None,
                None,
                f"upstream {status}" if failed else None,
            )
        )
        if len(batch) == 10_000:
            con.executemany(sql, batch)
            con.commit()
            batch.clear()
            if (i + 1) % 1_000_000 == 0:
                print(f"  {i + 1:,} rows ({(i + 1) / (time.perf_counter() - began):,.0f} rows/s)", flush=True)
    if batch:
        con.executemany(sql, batch)
        con.commit()
    elapsed = time.perf_counter() - began
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no ANALYZE: a real ledger has no statistics either
    con.close()
    return rows / elapsed


def timed(fn, repeat: int) -> tuple[float, float]:
    """(cold ms, median warm ms)."""
    t = time.perf_counter()
    fn()
    cold = (time.perf_counter() - t) * 1000
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1000)
    return cold, statistics.median(runs)


def mark(value: float, target: float) -> str:
    return "PASS" if value < target else "MISS"


def sizes(path: str, rows: int) -> None:
    con = sqlite3.connect(path)
    file_bytes = os.path.getsize(path) + (os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0)
    per_million = file_bytes / rows * 1_000_000 / 2**20
    print(f"database file: {file_bytes / 2**20:,.1f} MiB for {rows:,} rows = {per_million:,.0f} MiB per million rows")
    try:
        parts = con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
    except sqlite3.OperationalError:
        parts = []
    for name, size in parts[:6]:
        print(f"  {name:<34} {size / 2**20:>9,.1f} MiB  ({size / rows * 1_000_000 / 2**20:,.1f} MiB per million rows)")
    rollups = con.execute("SELECT COUNT(*) FROM ledger_rollup").fetchone()[0]
    print(f"  rollup rows: {rollups:,} (one per 15-minute slot, provider, model and profile with traffic)")
    con.close()


def writer_latency(path: str, seconds: float, rate: int, beside=None) -> dict:
    """Submit `rate` rows/s to a LedgerWriter for `seconds`; commit latency per row (ms)."""
    from hermit.core.models import LedgerEntry, now_ms
    from hermit.services.ledger import LedgerWriter

    submitted: dict[str, float] = {}
    latencies: list[float] = []

    last_commit = [0.0]

    def written(batch):
        now = last_commit[0] = time.perf_counter()
        latencies.extend((now - submitted.pop(e.request_id)) * 1000 for e in batch)

    writer = LedgerWriter(on_written=written)
    stop = threading.Event()
    reports = [0]

    def report_loop():
        while not stop.is_set():
            beside()
            reports[0] += 1

    thread = threading.Thread(target=report_loop, daemon=True) if callable(beside) else None
    if thread:
        thread.start()
    proc = None
    if beside == "process":  # like `hermit report` run beside the server: its own process
        proc = subprocess.Popen(
            [sys.executable, __file__, "--db", path, "--report-loop", str(seconds)], stdout=subprocess.PIPE, text=True
        )
    burst = max(rate // 100, 1)
    began = time.perf_counter()
    sent = 0
    while time.perf_counter() - began < seconds:
        for _ in range(burst):
            rid = uuid.uuid4().hex
            submitted[rid] = time.perf_counter()
            writer.submit(
                LedgerEntry(
                    request_id=rid,
                    created_at=now_ms(),
                    provider="openai",
                    upstream_model="gpt-4o",
                    endpoint="chat",
                    stream=False,
                    status_code=200,
                    profile_name="prod",
                    prompt_tokens=100,
                    completion_tokens=20,
                    total_tokens=120,
                    cost_usd=0.00045,
                    latency_ms=321.5,
                    usage_source="upstream",
                    client="bench",
                )
            )
            sent += 1
        time.sleep(max(0.0, began + sent / rate - time.perf_counter()))
    writer.flush(60)
    stop.set()
    if thread:
        thread.join(60)
    if proc:
        out, _ = proc.communicate(timeout=120)
        reports[0] = int(out.strip() or 0)
    writer.close()
    latencies.sort()
    return {
        "rows": len(latencies),
        "rate": len(latencies) / (last_commit[0] - began),
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[int(len(latencies) * 0.99)],
        "max": latencies[-1],
        "reports": reports[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30, help="spread the rows over the last DAYS days (default 30)")
    parser.add_argument("--db", help="SQLite file to use (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="use the rows already in --db")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write-seconds", type=float, default=5.0)
    parser.add_argument(
        "--write-rate",
        type=int,
        default=500,
        help="rows per second offered to the ledger writer (default 500: a very busy proxy)",
    )
    parser.add_argument("--report-loop", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report_loop:  # the reporting process of the write test
        from hermit.services.analytics import AnalyticsService, make_query
        from hermit.store.db import open_database

        open_database(f"sqlite:///{args.db}")
        service, count, end = AnalyticsService(), 0, time.perf_counter() + args.report_loop
        while time.perf_counter() < end:
            service.by_model(make_query())
            service.timeseries(make_query(), "day")
            count += 1
        print(count)
        return 0

    tmp = None
    path = args.db
    if path is None:
        tmp = tempfile.mkdtemp(prefix="hermit-bench-")
        path = str(Path(tmp) / "ledger.db")
    try:
        if not args.reuse:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
            print(f"generating {args.rows:,} rows over {args.days} days in {path} ...", flush=True)
            rate = generate(path, args.rows, args.days)
            print(f"  inserted at {rate:,.0f} rows/s with the rollup triggers on")
        from hermit.services.analytics import AnalyticsService, make_query
        from hermit.store import analytics_queries as q
        from hermit.store.db import open_database

        open_database(f"sqlite:///{path}")
        rows = int(q._db().execute_sql("SELECT COUNT(*) FROM ledger").fetchone()[0])
        print(
            f"\n{rows:,} rows; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; SQLite {sqlite3.sqlite_version}"
        )
        service = AnalyticsService()
        all_time, last_day = make_query(), make_query(since="24h")
        checks = [
            ("usage (whole range)", lambda: service.usage(all_time), TARGET_AGGREGATE_MS),
            ("report --view summary", lambda: service.summary(all_time), TARGET_AGGREGATE_MS),
            ("report --view by-model", lambda: service.by_model(all_time), TARGET_AGGREGATE_MS),
            (
                "report --view timeseries --bucket day (whole range)",
                lambda: service.timeseries(all_time, "day"),
                TARGET_AGGREGATE_MS,
            ),
            (
                "report --view timeseries --bucket day --since 24h",
                lambda: service.timeseries(last_day, "day"),
                TARGET_AGGREGATE_MS,
            ),
            (
                "report --view timeseries --bucket hour --since 24h",
                lambda: service.timeseries(last_day, "hour"),
                TARGET_AGGREGATE_MS,
            ),
            ("report --view by-model --since 24h", lambda: service.by_model(last_day), TARGET_AGGREGATE_MS),
            (
                "report --view timeseries --bucket hour --tz Asia/Kathmandu (whole range)",
                lambda: service.timeseries(make_query(tz="Asia/Kathmandu"), "hour"),
                TARGET_AGGREGATE_MS,
            ),
            ("report --view recent (20 rows)", lambda: service.requests(all_time, 20), TARGET_RECENT_MS),
            (
                "report --view recent --model gpt-4.1 (20 rows)",
                lambda: service.requests(make_query(model="gpt-4.1"), 20),
                TARGET_RECENT_MS,
            ),
        ]
        print(f"\n{'query':<75} {'cold ms':>9} {'warm ms':>9}  target")
        for name, fn, target in checks:
            cold, warm = timed(fn, args.repeat)
            print(f"{name:<75} {cold:>9.1f} {warm:>9.1f}  < {target:.0f} ms {mark(max(cold, warm), target)}")
        env = dict(os.environ, HERMIT_DATABASE_URL=f"sqlite:///{path}")
        t = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "hermit", "usage", "--json"], env=env, capture_output=True, text=True
        )
        wall = (time.perf_counter() - t) * 1000
        print(
            f"{'`hermit usage --json` as a process (start-up included)':<75} {wall:>9.1f} {'':>9}  exit {done.returncode}"
        )

        print()
        sizes(path, rows)

        print(
            f"\nledger writer, {args.write_rate:,} rows/s offered for {args.write_seconds:g} s (commit latency per row):"
        )
        alone = writer_latency(path, args.write_seconds, args.write_rate)
        other = writer_latency(path, args.write_seconds, args.write_rate, beside="process")
        same = writer_latency(
            path,
            args.write_seconds,
            args.write_rate,
            beside=lambda: (service.by_model(all_time), service.timeseries(all_time, "day")),
        )
        for label, r in (("alone", alone), ("reports in another process", other), ("reports in this process", same)):
            extra = f"; {r['reports']} reports ran meanwhile" if r["reports"] else ""
            print(
                f"  {label:<28} {r['rate']:>7,.0f} rows/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  "
                f"max {r['max']:6.1f} ms{extra}"
            )
        # Slowed = the writer falls behind the offered load, or rows wait 100 ms longer (p99) to be committed.
        for label, r in (("another process", other), ("this process", same)):
            slowed = r["rate"] < args.write_rate * 0.98 or r["p99"] > alone["p99"] + 100
            print(f"  writing slowed by reports in {label}: {'yes (MISS)' if slowed else 'no (PASS)'}")

        t = time.perf_counter()
        groups, problems = q.rollup_mismatches()
        print(
            f"\nrollups vs raw rows: {groups:,} groups compared in {time.perf_counter() - t:.1f} s: "
            f"{'all agree (PASS)' if not problems else f'{len(problems)} differ (MISS)'}"
        )
        return 0 if not problems else 1
    finally:
        if tmp and not args.keep:
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.remove(path + suffix)
                except FileNotFoundError:
                    pass
            os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(main())
