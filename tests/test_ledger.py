"""The ledger loses nothing: concurrency, a locked database, SIGTERM after a burst."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time

import httpx
import openai

from conftest import wait_for

BODY = {"model": "m", "messages": [{"role": "user", "content": "count me"}]}


async def _burst(url: str, n: int, stream_every: int = 0) -> list[int]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def one(i: int) -> int:
            body = dict(BODY, stream=bool(stream_every and i % stream_every == 0))
            response = await client.post(url + "/v1/chat/completions", json=body)
            await response.aread()
            return response.status_code

        return await asyncio.gather(*(one(i) for i in range(n)))


def test_500_concurrent_requests_give_exactly_500_rows(hermit):
    statuses = asyncio.run(_burst(hermit.url, 500, stream_every=5))
    assert statuses.count(200) == 500
    rows = hermit.rows()
    assert len(rows) == 500
    assert len({r["request_id"] for r in rows}) == 500
    assert sum(r["stream"] for r in rows) == 100
    assert all(r["usage_source"] == "upstream" and r["completion_tokens"] > 0 for r in rows)


def test_locked_database_delays_rows_but_never_the_requests(hermit, base_env):
    path = base_env["HERMIT_DATABASE_URL"][len("sqlite:///"):]
    blocker = sqlite3.connect(path, timeout=1, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # nobody can write for a while
    try:
        client = openai.OpenAI(base_url=hermit.v1, api_key="k", max_retries=0)
        started = time.perf_counter()
        for _ in range(20):
            client.chat.completions.create(**BODY)
        elapsed = time.perf_counter() - started
        assert elapsed < 3.0, f"requests waited on the locked database ({elapsed:.1f} s)"
        time.sleep(0.3)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert len(hermit.rows()) == 20


def test_sigterm_right_after_a_burst_loses_no_row(serve_process, base_env):
    proc = serve_process("--log-level", "warning")
    statuses = asyncio.run(_burst(proc.url, 300, stream_every=3))
    assert statuses.count(200) == 300
    code, _out, err = proc.stop(signal.SIGTERM)
    assert code == 0, err
    path = base_env["HERMIT_DATABASE_URL"][len("sqlite:///"):]
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM ledger").fetchone()
    assert count == 300
    assert "Traceback" not in err


def test_sigterm_with_streams_in_flight_records_them(serve_process, base_env, upstream):
    proc = serve_process(env={"HERMIT_DEFAULT_BASE_URL": upstream.url("slowstream-50+chunks-20")})

    async def stream_one(client: httpx.AsyncClient) -> int:
        async with client.stream("POST", proc.url + "/v1/chat/completions", json=dict(BODY, stream=True)) as r:
            async for _ in r.aiter_bytes():
                pass
            return r.status_code

    async def main() -> list:
        async with httpx.AsyncClient(timeout=30) as client:
            tasks = [asyncio.create_task(stream_one(client)) for _ in range(5)]
            await asyncio.sleep(0.3)  # all five are mid-stream (1 s each)
            proc.proc.send_signal(signal.SIGTERM)
            return await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    code, _out, err = proc.stop()
    assert code == 0, err
    path = base_env["HERMIT_DATABASE_URL"][len("sqlite:///"):]
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT status_code, completion_tokens, usage_source FROM ledger").fetchall()
    assert len(rows) == 5  # finished within the grace period or recorded as cut: never lost
    assert all(r[1] > 0 for r in rows)


def test_rows_appear_while_serving_not_only_at_shutdown(hermit):
    client = openai.OpenAI(base_url=hermit.v1, api_key="k", max_retries=0)
    client.chat.completions.create(**BODY)
    from hermit.store.repos import ledger_count

    assert wait_for(lambda: ledger_count() == 1, timeout=2)
