"""Analytics: every number checked against sums computed independently from the rows written,
on SQLite and PostgreSQL, through the service, the CLI and HTTP."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import httpx
import pytest

import analytics_oracle as oracle
from conftest import cli_json
from db_support import BACKENDS, _drop_postgres_template, db_url, drop_postgres, make_url, store  # noqa: F401
from hermit.services.analytics import AnalyticsService, QueryError, make_query
from hermit.store import analytics_queries as q
from hermit.store import repos

DAY = 86_400_000
SLOT = q.SLOT_MS
START = oracle.ms("2026-03-27T00:00:00Z")  # spans the 2026-03-29 DST change in Europe
# Rows exactly on slot, hour and day edges, and a millisecond either side of them.
GAP = (oracle.ms("2026-03-30T03:00:00Z"), oracle.ms("2026-03-30T09:00:00Z"))  # no traffic: empty buckets
EDGES = tuple(START + d for d in (0, SLOT - 1, SLOT, 3 * DAY - 1, 3 * DAY, 3 * DAY + 1, 5 * DAY + 7 * SLOT + 1))


@pytest.fixture(scope="module", params=BACKENDS)
def dataset(request, tmp_path_factory):
    """One database per backend with 1,500 random rows, shared by the read-only tests."""
    from hermit.store.db import close_database, open_database

    url = make_url(request.param, tmp_path_factory.mktemp("analytics"))
    data = [r for r in oracle.make_rows(7, 1500, START, 6 * DAY, EDGES) if not GAP[0] <= r.created_at < GAP[1]]
    open_database(url)
    repos.insert_ledger(data)
    close_database()
    yield url, data
    if request.param == "postgresql":
        drop_postgres(url)


@pytest.fixture
def rows(dataset):
    from hermit.store.db import close_database, open_database

    open_database(dataset[0])
    yield dataset[1]
    close_database()


def _query(**kw):
    return make_query(**kw)


RANGES = [
    (None, None),
    ("2026-03-28T03:17:41.123", None),
    (None, "2026-03-30T11:02:00"),
    ("2026-03-28T00:00:00Z", "2026-03-30T00:00:00Z"),  # aligned: rollups only
    ("2026-03-29T10:01:00", "2026-03-29T10:14:00"),  # inside one slot: raw rows only
    ("2026-03-29T10:14:59.999", "2026-03-29T10:30:00.001"),  # two raw edges around one slot
    ("2026-03-29T23:59:59.999", "2026-03-30T00:00:00.001"),
    ("2026-03-30T00:00:00+02:00", "2026-03-31T00:00:00+02:00"),
]


@pytest.mark.parametrize("since,until", RANGES)
def test_summary_usage_and_by_model_match_the_rows(rows, since, until):
    service = AnalyticsService()
    query = _query(since=since, until=until)
    subset = oracle.select(rows, query.since, query.until)
    assert service.summary(query) == oracle.summary(subset)
    assert service.usage(query) == oracle.usage(subset)
    got = [{k: i[k] for k in oracle.by_model(subset)[0]} for i in service.by_model(query)["data"]] if subset else []
    assert got == oracle.by_model(subset)


@pytest.mark.parametrize(
    "filters",
    [
        {"model": "gpt-4o"},
        {"provider": "openai"},
        {"profile": "work"},
        {"provider": "ollama"},
        {"model": oracle.UNPRICED_MODEL, "since": "2026-03-29T06:00:00"},
        {"model": "no-such-model"},
    ],
)
def test_filters_match_the_rows(rows, filters):
    service = AnalyticsService()
    query = _query(**filters)
    subset = oracle.select(rows, query.since, query.until, query.profile, query.provider, query.model)
    assert service.summary(query) == oracle.summary(subset)
    assert len(service.by_model(query)["data"]) == len({(r.provider, r.upstream_model) for r in subset})


def test_unpriced_rows_are_counted_beside_the_cost_never_as_zero(rows):
    service = AnalyticsService()
    unpriced = service.summary(_query(model=oracle.UNPRICED_MODEL))
    assert unpriced["requests"] > 0 and unpriced["cost_usd"] is None
    assert unpriced["unpriced_requests"] == unpriced["requests"]
    assert unpriced["unpriced_tokens"] == unpriced["total_tokens"] > 0
    local = service.summary(_query(provider="ollama"))
    assert local["cost_usd"] == 0.0 and local["unpriced_requests"] == 0  # free on purpose
    everything = service.summary(_query())
    priced = [r for r in rows if r.cost_usd is not None]
    assert everything["cost_usd"] == sum(oracle.nano(r) for r in priced) / 1e9
    assert everything["unpriced_tokens"] == sum(r.total_tokens for r in rows if r.cost_usd is None)
    item = next(i for i in service.by_model(_query())["data"] if i["model"] == oracle.UNPRICED_MODEL)
    assert item["cost_usd"] is None


ZONES = ["UTC", "Europe/Paris", "Asia/Kathmandu", "+05:30", "America/New_York"]


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_timeseries_buckets_match_the_rows_with_empty_ones_as_zeros(rows, bucket, tz):
    since, until = "2026-03-28T05:07:00Z", "2026-03-31T17:00:00.5Z"
    query = _query(since=since, until=until, tz=tz)
    got = AnalyticsService().timeseries(query, bucket)
    assert got["bucket"] == bucket
    expected = oracle.timeseries(rows, bucket, query.tz, query.since, query.until)
    points = [(p["bucket_start"], {k: p[k] for k in expected[0][1]}) for p in got["data"]]
    assert points == expected
    if bucket == "hour":
        empty = [p for p in points if GAP[0] <= oracle.ms(p[0]) and oracle.ms(p[0]) + 3_600_000 <= GAP[1]]
        assert len(empty) >= 5 and all(
            p[1] == {**p[1], "requests": 0, "total_tokens": 0, "cost_usd": 0.0} for p in empty
        )


@pytest.mark.parametrize(
    "bucket,since,until",
    [
        ("minute", "2026-03-29T00:50:30Z", "2026-03-29T01:20:00Z"),  # Paris jumps from 02:00 to 03:00 at 01:00Z
        ("week", "2026-03-01T00:00:00", "2026-04-20T00:00:00"),
        ("month", "2026-01-15T00:00:00", "2026-05-02T00:00:00"),
    ],
)
def test_minute_week_and_month_buckets_across_dst(rows, bucket, since, until):
    for tz in ("Europe/Paris", "UTC"):
        query = _query(since=since, until=until, tz=tz)
        got = AnalyticsService().timeseries(query, bucket)
        expected = oracle.timeseries(rows, bucket, query.tz, query.since, query.until)
        assert [(p["bucket_start"], {k: p[k] for k in expected[0][1]}) for p in got["data"]] == expected


def test_day_buckets_follow_the_zone_and_its_dst_change(store):
    paris = ZoneInfo("Europe/Paris")
    near_midnight = [dt.datetime(2026, 3, d, 23, 59, 59, 999000, tzinfo=paris) for d in (28, 29)]
    at_midnight = [dt.datetime(2026, 3, d, 0, 0, tzinfo=paris) for d in (29, 30)]
    times = [int(t.timestamp() * 1000) for t in near_midnight + at_midnight]
    data = oracle.make_rows(3, 0, 0, 1, tuple(times))
    repos.insert_ledger(data)
    got = AnalyticsService().timeseries(_query(since="2026-03-28", until="2026-03-31", tz="Europe/Paris"), "day")
    assert [(p["bucket_start"], p["requests"]) for p in got["data"]] == [
        ("2026-03-28T00:00:00+01:00", 1),  # 28th 23:59:59.999
        ("2026-03-29T00:00:00+01:00", 2),  # 29th 00:00 and 23:59:59.999: a 23-hour day
        ("2026-03-30T00:00:00+02:00", 1),
    ]
    utc = AnalyticsService().timeseries(_query(since="2026-03-28", until="2026-03-31"), "day")
    assert [p["bucket_start"] for p in utc["data"]] == [
        "2026-03-28T00:00:00Z",
        "2026-03-29T00:00:00Z",
        "2026-03-30T00:00:00Z",
    ]
    assert sum(p["requests"] for p in utc["data"]) == 4


def test_timeseries_without_since_starts_at_the_first_row_and_ends_at_until(rows):
    got = AnalyticsService().timeseries(_query(until="2026-04-03T00:00:00Z"), "day")
    first = min(r.created_at for r in rows)
    assert got["data"][0]["bucket_start"] == oracle.label(first, "day", dt.timezone.utc)
    assert got["data"][-1]["bucket_start"] == "2026-04-02T00:00:00Z"
    assert sum(p["requests"] for p in got["data"]) == len(rows)


def test_recent_is_newest_first_with_filters_and_limit(rows):
    service = AnalyticsService()
    got = service.requests(_query(), 25)["data"]
    newest = sorted(rows, key=lambda r: (r.created_at, int(r.request_id.split("-")[1])), reverse=True)
    assert [r["request_id"] for r in got] == [r.request_id for r in newest[:25]]
    assert set(got[0]) >= {
        "id",
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
        "cost_usd",
        "latency_ms",
        "ttft_ms",
        "overhead_ms",
        "usage_source",
        "client",
        "project",
        "user",
        "error",
    }
    until = oracle.ms("2026-03-30T00:00:00Z")
    rare = service.requests(_query(model=oracle.UNPRICED_MODEL, until="2026-03-30T00:00:00Z"), 7)["data"]
    want = [r for r in newest if r.upstream_model == oracle.UNPRICED_MODEL and r.created_at < until][:7]
    assert [r["request_id"] for r in rare] == [r.request_id for r in want]
    assert all(r["upstream_model"] == oracle.UNPRICED_MODEL and r["cost_usd"] is None for r in rare)


def test_rollups_agree_with_raw_rows_after_inserts_updates_and_deletes(store):
    repos.insert_ledger(oracle.make_rows(8, 600, START, 2 * DAY, EDGES))
    assert q.rollup_mismatches() == (q.rollup_mismatches()[0], [])
    store.execute_sql(
        "UPDATE ledger SET created_at = created_at + 3600000, prompt_tokens = prompt_tokens + 1 WHERE (id / 7) * 7 = id"
    )
    store.execute_sql("UPDATE ledger SET cost_nanousd = NULL WHERE (id / 11) * 11 = id")
    store.execute_sql("DELETE FROM ledger WHERE (id / 5) * 5 = id")
    groups, problems = q.rollup_mismatches()
    assert groups > 0 and problems == []
    store.execute_sql(
        "UPDATE ledger_rollup SET requests = requests + 1 WHERE bucket_start = (SELECT MIN(bucket_start) FROM ledger_rollup)"
    )
    assert q.rollup_mismatches()[1]
    q.rebuild_rollups()
    assert q.rollup_mismatches()[1] == []


def test_bad_input_is_refused_with_the_parameter_named(store):
    service = AnalyticsService()
    for kw, param in [
        ({"since": "yesterdayish"}, "since"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"since": "2026-04-02", "until": "2026-04-01"}, "until"),
    ]:
        with pytest.raises(QueryError) as info:
            make_query(**kw)
        assert info.value.param == param
    with pytest.raises(QueryError, match="bucket"):
        service.timeseries(_query(since="2026-01-01"), "fortnight")
    with pytest.raises(QueryError, match="minute buckets"):
        service.timeseries(_query(since="2020-01-01", until="2026-01-01"), "minute")


def test_times_without_offset_are_utc_or_tz_and_relative_ages_work():
    now = oracle.ms("2026-04-10T12:00:00Z")
    assert make_query(since="2026-04-01T00:00:00", now=now).since == oracle.ms("2026-04-01T00:00:00Z")
    assert make_query(since="2026-04-01T00:00:00", tz="+02:00", now=now).since == oracle.ms("2026-03-31T22:00:00Z")
    assert make_query(since="2026-04-01", tz="Europe/Paris", now=now).since == oracle.ms("2026-03-31T22:00:00Z")
    assert make_query(since="24h", now=now).since == now - DAY
    assert make_query(since="2026-04-01T00:00:00-05:00", tz="Asia/Tokyo", now=now).since == oracle.ms(
        "2026-04-01T05:00:00Z"
    )


# -- CLI and HTTP give the same objects -------------------------------------------------------


def _write(url: str, entries) -> None:
    from hermit.store.db import close_database, open_database

    open_database(url)
    repos.insert_ledger(entries)
    close_database()


def test_cli_json_and_human_output(cli, db_url):
    data = oracle.make_rows(11, 300, START, 2 * DAY)
    _write(db_url, data)
    env = {"HERMIT_DATABASE_URL": db_url}
    assert cli_json(cli("usage", "--json", env=env)) == oracle.usage(data)
    assert cli_json(cli("--json", "report", env=env)) == oracle.summary(data)
    since = "2026-03-27T06:00:00"
    got = cli_json(cli("report", "--view", "by-model", "--since", since, "--json", env=env))["data"]
    subset = oracle.select(data, oracle.ms(since + "Z"))
    assert [{k: i[k] for k in oracle.by_model(subset)[0]} for i in got] == oracle.by_model(subset)
    series = cli_json(
        cli(
            "report",
            "--view",
            "timeseries",
            "--bucket",
            "day",
            "--since",
            "2026-03-27",
            "--until",
            "2026-03-30",
            "--tz",
            "Europe/Paris",
            "--json",
            env=env,
        )
    )
    expected = oracle.timeseries(
        data, "day", ZoneInfo("Europe/Paris"), oracle.ms("2026-03-26T23:00:00Z"), oracle.ms("2026-03-29T22:00:00Z")
    )
    assert [(p["bucket_start"], p["requests"]) for p in series["data"]] == [(k, v["requests"]) for k, v in expected]
    recent = cli_json(cli("report", "--view", "recent", "--json", env=env))["data"]
    assert len(recent) == 20  # the default --requests-limit

    human = cli("usage", env=env)
    assert human.returncode == 0, human.stderr
    assert f"{sum(r.prompt_tokens for r in data):,}" in human.stdout and "times in UTC" in human.stdout
    assert "not included:" in human.stdout and "unpriced" in human.stdout
    table = cli("report", "--view", "by-model", env=env).stdout
    assert "TOTAL" in table and f"{sum(r.total_tokens for r in data):,}" in table and "unpriced" in table
    ts = cli(
        "report",
        "--view",
        "timeseries",
        "--bucket",
        "hour",
        "--since",
        "2026-03-27T10:00:00",
        "--until",
        "2026-03-27T14:00:00",
        env=env,
    ).stdout
    assert ts.count("\n2026-03-27 ") == 4 and "TOTAL" in ts


def test_cli_help_and_bad_usage(cli):
    helptext = cli("report", "--help").stdout
    for view in ("summary", "by-model", "timeseries", "recent"):
        assert f"\n  {view} " in helptext
    for args in (
        ["report", "--since", "soon"],
        ["usage", "--tz", "Nowhere/Land"],
        ["report", "--view", "pie"],
        ["report", "--view", "timeseries", "--bucket", "minute", "--since", "2000-01-01"],
        ["report", "--requests-limit", "0"],
    ):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_http_routes_return_the_same_objects_as_the_cli(make_server, cli, db_url):
    data = oracle.make_rows(5, 200, START, DAY)
    _write(db_url, data)
    server = make_server(HERMIT_DATABASE_URL=db_url)
    env = {"HERMIT_DATABASE_URL": db_url}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for path, args in [
            ("/analytics/summary", ["report"]),
            ("/analytics/usage", ["usage"]),
            ("/analytics/by-model?provider=openai", ["report", "--view", "by-model", "--provider", "openai"]),
            (
                "/analytics/timeseries?bucket=hour&since=2026-03-27T03:30:00&until=2026-03-27T09:00:00",
                ["report", "--view", "timeseries", "--since", "2026-03-27T03:30:00", "--until", "2026-03-27T09:00:00"],
            ),
            (
                "/analytics/requests?limit=5&model=gpt-4o",
                ["report", "--view", "recent", "--requests-limit", "5", "--model", "gpt-4o"],
            ),
        ]:
            response = http.get(path)
            assert response.status_code == 200, response.text
            assert response.json() == cli_json(cli(*args, "--json", env=env)), path
        assert http.get("/analytics/summary").json() == oracle.summary(data)
        bad = http.get("/analytics/timeseries?bucket=decade")
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "bucket"
        bad = http.get("/analytics/summary?since=tomorrowish")
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "since"
        assert http.get("/analytics/requests?limit=0").status_code == 400


def test_admin_token_guards_analytics_and_prices(make_server):
    server = make_server(HERMIT_ADMIN_TOKEN="s3cret-admin-token")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/analytics/summary").status_code == 401
        assert http.get("/prices").status_code == 401
        ok = http.get("/analytics/summary", headers={"Authorization": "Bearer s3cret-admin-token"})
        assert ok.status_code == 200 and json.loads(ok.text)["requests"] >= 0


def test_usage_starts_light_and_tz_local_says_which_zone(cli, base_env):
    import subprocess
    import sys

    code = (
        "import sys; from hermit.cli import main; main(['usage', '--json']); "
        "print(sorted(m for m in ('quart', 'httpx', 'textual', 'hypercorn') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=base_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("[]")
    local = cli("usage", "--tz", "local", env={"TZ": "Asia/Tokyo"})
    assert local.returncode == 0 and "(times in Asia/Tokyo)" in local.stdout
