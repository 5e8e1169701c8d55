"""The TUI's non-visual parts: the live feed, formatting, chart maths, and analytics == `hermit report`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hermit.core.models import LedgerEntry, iso_from_ms
from hermit.services.events import (
    ProfileActivated,
    RequestFinished,
    RequestProgress,
    RequestStarted,
)
from hermit.tui.clock import FrozenClock
from hermit.tui.feed import LiveFeed, LiveFilter
from hermit.tui.fmt import ago, compact, duration, fit, money
from hermit.tui.widgets.charts import resample

NOW = 1_748_961_000_000  # 2025-06-03T14:30:00Z


def entry(rid: str, status: int = 200, created: int = NOW - 1000, **kw) -> LedgerEntry:
    base = dict(request_id=rid, created_at=created, provider="openai", upstream_model=kw.pop("model", "m"),
                endpoint="chat", stream=False, status_code=status, prompt_tokens=5, completion_tokens=7,
                total_tokens=12, cost_usd=0.5, latency_ms=100.0)
    base.update(kw)
    return LedgerEntry(**base)


def started(rid: str, model: str = "m") -> RequestStarted:
    return RequestStarted(rid, NOW - 500, "chat", True, "openai", model, "p", "c")


@pytest.fixture
def feed():
    return LiveFeed(FrozenClock(NOW), capacity=50)


def test_receive_is_a_bare_append_and_drain_folds(feed):
    assert feed.receive == feed.pending.append  # the bus subscriber does nothing else
    feed.receive(started("a"))
    feed.receive(RequestProgress("a", 16))
    assert not feed.rows  # nothing happens until the UI's tick
    assert feed.drain() == 2
    row = feed.rows["a"]
    assert row.active and row.completion_tokens == 16 and feed.in_flight == 1
    feed.receive(RequestFinished(entry("a", completion_tokens=20)))
    feed.drain()
    assert row.status == 200 and row.completion_tokens == 20 and feed.in_flight == 0
    assert feed.finished_total == 1 and feed.requests_per_minute() == 1


def test_rejected_requests_appear_without_a_start(feed):
    feed.receive(RequestFinished(entry("r", status=400, error="bad body")))
    feed.drain()
    assert feed.rows["r"].failed and feed.view(LiveFilter(status="errors"))[0].request_id == "r"


def test_capacity_drops_oldest_finished_rows_but_keeps_in_flight(feed):
    feed.receive(started("keep"))
    for i in range(120):
        feed.receive(RequestFinished(entry(f"e{i}")))
    feed.drain()
    assert len(feed.rows) == 50 and "keep" in feed.rows and "e119" in feed.rows and "e0" not in feed.rows


def test_filters(feed):
    feed.receive(started("live", model="gpt-4o"))
    feed.receive(RequestFinished(entry("ok", model="gpt-4o", client="curl")))
    feed.receive(RequestFinished(entry("bad", status=502, model="llama", error="upstream unreachable")))
    feed.drain()
    ids = lambda flt: [r.request_id for r in feed.view(flt)]  # noqa: E731
    assert ids(LiveFilter()) == ["bad", "ok", "live"]  # newest first
    assert ids(LiveFilter(status="ok")) == ["ok"]
    assert ids(LiveFilter(status="errors")) == ["bad"]
    assert ids(LiveFilter(status="active")) == ["live"]
    assert ids(LiveFilter(model="gpt-4o")) == ["ok", "live"]
    assert ids(LiveFilter(text="unreachable")) == ["bad"]
    assert ids(LiveFilter(text="gpt curl")) == ["ok"]
    assert LiveFilter(status="errors", text="x").describe() == "status=errors text='x'"


def test_backfill_goes_below_live_rows_and_is_not_counted_twice(feed):
    feed.receive(RequestFinished(entry("live")))
    feed.drain()
    feed.add_entries([entry("old2", created=NOW - 5000), entry("old1", created=NOW - 9000)], backfill=True)
    assert [r.request_id for r in feed.view(LiveFilter())] == ["live", "old2", "old1"]
    assert feed.finished_total == 1


def test_today_baseline_plus_live_events(feed):
    feed.receive(RequestFinished(entry("before", created=NOW - 10_000, total_tokens=100, cost_usd=1.0)))
    feed.drain()
    # the ledger already has "before" (it finished before the query ran at NOW - 5000)
    feed.set_today_baseline({"total_tokens": 1000, "cost_usd": 2.0, "unpriced_requests": 1, "requests": 10},
                            NOW - 5000)
    assert (feed.today_tokens, feed.today_cost) == (1000, 2.0)
    feed.receive(RequestFinished(entry("after", total_tokens=50, cost_usd=None)))
    feed.drain()
    assert (feed.today_tokens, feed.today_cost, feed.today_unpriced, feed.today_requests) == (1050, 2.0, 2, 11)


def test_day_rollover_resets_today(feed):
    feed.receive(RequestFinished(entry("x", total_tokens=10)))
    feed.drain()
    assert feed.today_tokens == 10
    feed.clock.advance(86_400)
    feed.drain()
    assert feed.today_tokens == 0


def test_profile_events_are_counted(feed):
    feed.receive(ProfileActivated(1, "p", "http"))
    feed.drain()
    assert feed.profile_events == 1


def test_formatting():
    assert compact(999) == "999" and compact(1234) == "1.2k" and compact(5_600_000) == "5.6M"
    assert money(None) == "?" and money(0) == "$0.00" and money(0.0123) == "$0.0123"
    assert money(0.000092) == "$0.000092" and money(1e-9) == "<$0.00001" and money(12.5) == "$12.50"
    assert all(len(money(v)) <= 9 for v in (1e-9, 0.0000123, 0.5, 9.99, 1234.5))
    assert duration(None) == "-" and duration(250) == "250ms" and duration(2500) == "2.5s"
    assert ago(NOW - 5000, NOW) == "5s ago" and ago(NOW - 7_200_000, NOW) == "2h ago" and ago(None, NOW) == "never"
    assert fit("abcdef", 4) == "abc…" and fit("ab", 4) == "ab"


def test_resample_fits_columns_and_keeps_totals():
    values = list(range(168))
    out, k = resample(values, 50)
    assert k == 4 and len(out) <= 50 and sum(out) == sum(values)
    assert resample([1, 2], 50) == ([1, 2], 1)


def test_analytics_panel_numbers_equal_hermit_report(tmp_path):
    """The panel's totals, by-model and series are `hermit report` for the same --since/--until."""
    from hermit.tui.analytics_source import AnalyticsSource
    from hermit.tui.sample import SAMPLE_NOW, build_sample_services

    services = build_sample_services(tmp_path)
    try:
        now = int(SAMPLE_NOW.timestamp() * 1000)
        clock = FrozenClock(now)
        source = AnalyticsSource(services)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HERMIT_")}
        env.update(HERMIT_DATABASE_URL=services.settings.database_url, HERMIT_CONFIG_DIR=str(tmp_path / "c"))
        for period, bucket in (("day", "hour"), ("week", "hour"), ("hour", "minute")):
            snap = source.snapshot(period, now, clock.tz)
            span = ["--since", iso_from_ms(snap.since_ms), "--until", iso_from_ms(snap.until_ms)]

            def report(*args):
                done = subprocess.run([sys.executable, "-m", "hermit", "report", *args, *span, "--json"], env=env,
                                      capture_output=True, text=True, timeout=60)
                assert done.returncode == 0, done.stderr
                return json.loads(done.stdout)

            assert snap.summary == report("--view", "summary")
            assert snap.by_model == report("--view", "by-model")["data"]
            series = report("--view", "timeseries", "--bucket", bucket)["data"]
            assert [i["requests"] for i in series] == [i["requests"] for i in snap.series]
            assert [i["total_tokens"] for i in series] == [i["total_tokens"] for i in snap.series]
            assert snap.summary["requests"] > 0
    finally:
        services.close()


def test_the_tui_is_a_view_it_never_imports_the_store():
    """hermit/tui/** reaches the database only through hermit.services (run on its DB thread)."""
    import ast
    from pathlib import Path

    import hermit.tui

    offenders = []
    for path in Path(hermit.tui.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.split(".")[0] == "peewee" or name.startswith(("hermit.store", "hermit.wiring")):
                    offenders.append(f"{path.name}: {name}")
    assert not offenders
