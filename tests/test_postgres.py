"""PostgreSQL: the same answers as SQLite for the same rows, and several Hermits on one database."""

from __future__ import annotations

import httpx
import openai
import pytest

import analytics_oracle as oracle
from conftest import wait_for
from db_support import _drop_postgres_template, drop_postgres, fresh_postgres_url, make_url, require_postgres  # noqa: F401
from hermit.services.analytics import AnalyticsService, make_query
from hermit.store import repos

DAY = 86_400_000


@pytest.fixture
def pg_url():
    require_postgres()
    url = fresh_postgres_url()
    yield url
    from hermit.store.db import close_database

    close_database()
    drop_postgres(url)


def _answers(url: str, rows) -> dict:
    from hermit.store.db import close_database, open_database

    open_database(url)
    repos.insert_ledger(rows)
    service = AnalyticsService()
    out = {
        "summary": service.summary(make_query()),
        "by_model": service.by_model(make_query()),
        "recent": [r["request_id"] for r in service.requests(make_query(), 50)["data"]],
    }
    for tz in ("UTC", "Europe/Paris", "Asia/Kathmandu", "America/Sao_Paulo"):
        for bucket in ("minute", "hour", "day", "week", "month"):
            since = "2026-10-24T22:10:00" if bucket == "minute" else "2026-10-20T03:00:00"
            until = "2026-10-25T03:00:00" if bucket == "minute" else "2026-11-05T00:00:00"
            query = make_query(since=since, until=until, tz=tz, provider="openai" if tz == "UTC" else None)
            out[(tz, bucket)] = service.timeseries(query, bucket)
    close_database()
    return out


def test_sqlite_and_postgresql_agree_on_every_answer_and_bucket(pg_url, tmp_path):
    start = oracle.ms("2026-10-20T00:00:00Z")  # Europe leaves summer time on 2026-10-25
    rows = oracle.make_rows(
        21, 1200, start, 16 * DAY, (oracle.ms("2026-10-25T01:00:00Z"), oracle.ms("2026-10-25T00:59:59.999Z"))
    )
    lite = _answers(make_url("sqlite", tmp_path), rows)
    pg = _answers(pg_url, rows)
    assert lite.keys() == pg.keys()
    for key in lite:
        assert lite[key] == pg[key], key
    assert lite["summary"] == oracle.summary(rows)


def test_two_hermits_share_one_postgresql_ledger_and_prices(serve_process, pg_url, upstream):
    env = {"HERMIT_DATABASE_URL": pg_url, "HERMIT_DEFAULT_BASE_URL": upstream.url("cached-2")}
    a = serve_process(env=env)
    b = serve_process(env=env)
    httpx.post(a.url + "/prices", json={"model": "fake-model-a", "input": 1, "output": 2}).raise_for_status()
    assert any(p["source"] == "override" for p in httpx.get(b.url + "/prices").json()["data"])
    for srv in (a, b):
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key="k", max_retries=0)
        for _ in range(5):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hello from a test"}])

    def all_rows():
        summary = httpx.get(b.url + "/analytics/summary").json()
        return summary if summary["requests"] == 10 else None

    summary = wait_for(all_rows, timeout=10, interval=0.1)
    assert summary, "rows from both instances should land in the one ledger"
    assert httpx.get(a.url + "/analytics/summary").json() == summary
    rows = httpx.get(a.url + "/analytics/requests?limit=20").json()["data"]
    assert len(rows) == 10 and all(r["cost_usd"] is not None and r["cached_tokens"] == 2 for r in rows)
    assert summary["unpriced_requests"] == 0
    assert summary["cost_usd"] == sum(round(r["cost_usd"] * 1e9) for r in rows) / 1e9


def test_profiles_and_a_concurrent_burst_on_postgresql(make_server, cli, pg_url, upstream):
    """Storage and ledger on PostgreSQL: profiles persist, and 300 concurrent requests give 300 exact rows."""
    import asyncio

    env = {"HERMIT_DATABASE_URL": pg_url}
    added = cli(
        "profiles", "add", "--name", "second", "--provider", "openai", "--base-url", upstream.url("cached-3"),
        "--model", "gpt-4o-mini", "--skip-test", "--activate", "--json", env=env,
    )
    assert added.returncode == 0, added.stderr
    srv = make_server(HERMIT_DATABASE_URL=pg_url)

    async def burst():
        async with httpx.AsyncClient(base_url=srv.v1, timeout=30) as http:
            body = {"model": "m", "messages": [{"role": "user", "content": "count these five words"}]}
            replies = await asyncio.gather(*(http.post("/chat/completions", json=body) for _ in range(300)))
            return [r.status_code for r in replies]

    assert asyncio.run(burst()) == [200] * 300
    rows = srv.rows()
    assert len(rows) == 300 and len({r["request_id"] for r in rows}) == 300
    assert {(r["profile_name"], r["provider"], r["upstream_model"]) for r in rows} == {("second", "openai", "gpt-4o-mini")}
    summary = httpx.get(srv.url + "/analytics/summary").json()
    assert summary["requests"] == 300 and summary["cached_tokens"] == sum(r["cached_tokens"] for r in rows) == 900
    # gpt-4o-mini is in the bundled table: 0.15 input, 0.075 cached input, 0.60 output (USD per million)
    want = sum(
        round((r["prompt_tokens"] - 3) * 150 + 3 * 75 + r["completion_tokens"] * 600) for r in rows
    )
    assert summary["cost_usd"] == want / 1e9 and summary["unpriced_requests"] == 0
