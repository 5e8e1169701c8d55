"""The TUI with the real proxy inside it: live traffic, quitting with requests in flight, a taken port,
a database that cannot be opened, watching another process's database, bursts."""

from __future__ import annotations

import argparse
import asyncio
import socket
import time

import httpx
import pytest

from conftest import until
from hermit.services import tui_support
from hermit.settings import Settings
from hermit.tui.app import HermitApp
from hermit.tui.sample import settle

pytestmark = pytest.mark.asyncio


async def quit_app(pilot) -> None:
    """Leave the way an operator does (q), so the server stops cleanly instead of being cancelled."""
    await pilot.press("q")
    await until(pilot, lambda: pilot.app._exit, timeout=20, what="exit")


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(host=kw.pop("host", "127.0.0.1"), port=kw.pop("port", 0),
                              no_server=kw.pop("no_server", False), **kw)


@pytest.fixture
def hermit_env(base_env):
    env = dict(base_env)
    env["HERMIT_SECRET_KEY"] = "tui-tests-secret"
    return env


@pytest.fixture
def prepared(hermit_env):
    """cli.tui.prepare() as `hermit tui` runs it; everything opened is closed afterwards."""
    from hermit.cli.tui import prepare

    opened = []

    def _prepare(env=None, **kw):
        settings = Settings.from_env(env or hermit_env)
        services, server, problem = prepare(_args(**kw), settings)
        opened.append(services)
        return services, server, problem, settings

    yield _prepare
    for services in opened:
        if services is not None:
            services.close()


async def test_live_panel_shows_traffic_from_the_embedded_proxy(prepared, hermit_env, upstream):
    services, server, problem, settings = prepared()
    assert problem is None and server is not None
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: services.profiles.update("default", {"allow_client_model_override": True}))
    app = HermitApp(services, server, settings=settings, cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(server.started.wait(), 10)
        await settle(pilot)
        info = app.main.query_one("#status-bar").info
        assert info.state == "running" and info.where == f"on {server.url}"
        assert info.profile == ("default", "openai-compatible", "fake-model-a")
        async with httpx.AsyncClient(base_url=server.url + "/v1", timeout=10) as client:
            chat = {"model": "x", "messages": [{"role": "user", "content": "hello there"}]}
            r = await client.post("/chat/completions", json=chat)
            assert r.status_code == 200
            r = await client.post("/chat/completions", json={**chat, "model": "fake-error-500"})
            assert r.status_code == 500
            stream = {**chat, "model": "fake-slowstream-15+chunks-64", "stream": True}
            seen_progress = []
            async with client.stream("POST", "/chat/completions", json=stream) as response:
                async for _ in response.aiter_bytes():
                    app._tick()
                    rows = [r for r in app.feed.rows.values() if r.stream and r.active]
                    if rows and rows[0].completion_tokens:
                        seen_progress.append(rows[0].completion_tokens)
        await until(pilot, lambda: app.feed.finished_total >= 3, what="three finished rows")
        app._tick()
        assert min(seen_progress) < 64 and len(set(seen_progress)) >= 2  # the count rose while chunks passed
        rows = app.main.query_one("#ledger").rows
        assert [r.status for r in rows[:3]] == [200, 500, 200]
        assert rows[0].stream and rows[0].completion_tokens == 64 and rows[0].ttft_ms is not None
        assert rows[1].failed and "500" in (rows[1].error or "")
        assert app.main.query_one("#status-bar").info.rpm >= 3
        await quit_app(pilot)


async def test_quit_with_requests_in_flight_leaves_the_ledger_complete(prepared, upstream):
    services, server, problem, settings = prepared()
    app = HermitApp(services, server, settings=settings, cursor_blink=False)
    results: list[int] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(server.started.wait(), 10)
        await settle(pilot)
        client = httpx.AsyncClient(base_url=server.url + "/v1", timeout=20)
        body = {"model": "x", "messages": [{"role": "user", "content": "hi"}], "stream": True}

        async def one() -> None:
            async with client.stream("POST", "/chat/completions", json=body) as response:
                async for _ in response.aiter_bytes():
                    pass
                results.append(response.status_code)

        # every request slow: about 1.2 s of streaming each, well inside the 5 s grace period
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: services.profiles.update("default", {"base_url": upstream.url("slowstream-100+chunks-10")}))
        await server.active.refresh()
        tasks = [asyncio.create_task(one()) for _ in range(6)]
        await until(pilot, lambda: (app._tick(), app.feed.in_flight)[1] == 6, what="six in flight")
        await pilot.press("q")
        await until(pilot, lambda: app.server_state() == "stopping", what="stopping")
        refused = None
        try:
            async with httpx.AsyncClient(timeout=2) as late:
                refused = (await late.post(server.url + "/v1/chat/completions", json=body)).status_code
        except httpx.HTTPError:
            refused = "refused"
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
        await until(pilot, lambda: app._exit, timeout=20, what="exit")
        await client.aclose()
    assert refused == "refused"  # stopped accepting at once
    assert results == [200] * 6
    rows = [e for e in tui_support.recent_entries(50) if e.client != "hermit-quick-test"]
    assert len(rows) == 6 and all(e.status_code == 200 and e.completion_tokens == 10 for e in rows)
    assert server.state == "stopped"


async def test_taken_port_says_so_and_offers_to_watch(prepared):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        services, server, problem, settings = prepared(port=port)
    assert server is None
    title, message = problem
    assert f"127.0.0.1:{port}" in message and "already in use" in message
    await asyncio.get_running_loop().run_in_executor(None, tui_support.insert_entries, [_entry("older-1")])
    app = HermitApp(services, None, settings=settings, problem=problem, cursor_blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        from hermit.tui.screens.dialogs import ProblemDialog

        assert isinstance(app.screen, ProblemDialog)
        assert app.server_state() == "error"
        await pilot.press("w")
        await until(pilot, lambda: app.screen is app.main and app.ready.is_set(), what="watch mode")
        await settle(pilot)
        assert app.server_state() == "watching"
        assert "older-1" in app.feed.rows


async def test_unusable_database_is_explained_not_a_crash(prepared, hermit_env, tmp_path):
    env = {**hermit_env, "HERMIT_DATABASE_URL": f"sqlite:///{tmp_path / 'missing-folder' / 'x.db'}"}
    services, server, problem, settings = prepared(env=env)
    assert services is None and server is None
    assert "does not exist" in problem[1]
    app = HermitApp(None, None, settings=settings, problem=problem, cursor_blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("w")  # watching needs the database too: it says so again
        from hermit.tui.screens.dialogs import ProblemDialog

        await until(pilot, lambda: isinstance(app.screen, ProblemDialog) and not app.screen.can_watch,
                    what="second dialog")
        assert "does not exist" in str(app.screen.query_one("#problem-message").render())
        await pilot.press("q")
        await until(pilot, lambda: app._exit, what="exit")


async def test_no_server_watches_a_headless_hermit(prepared, serve_process, hermit_env):
    proc = serve_process()
    services, server, problem, settings = prepared(no_server=True)
    assert server is None and problem is None
    app = HermitApp(services, None, settings=settings, cursor_blink=False, watch_seconds=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.server_state() == "watching" and "no proxy here" in app.where()
        assert app.feed.finished_total == 0
        async with httpx.AsyncClient(base_url=proc.url + "/v1", timeout=10) as client:
            for _ in range(3):
                r = await client.post("/chat/completions", json={"model": "x", "messages": [{"role": "user",
                                                                                           "content": "hi"}]})
                assert r.status_code == 200
        await until(pilot, lambda: app.feed.finished_total == 3, timeout=30, what="rows from the other process")
        app._tick()
        assert len(app.main.query_one("#ledger").rows) == 3
        # a profile added and activated elsewhere shows up too
        from tests.conftest import run_cli

        result = await asyncio.get_running_loop().run_in_executor(None, lambda: run_cli(
            hermit_env, "profiles", "add", "--name", "other", "--provider", "openai-compatible",
            "--base-url", "http://127.0.0.1:9/v1", "--skip-test", "--activate"))
        assert result.returncode == 0, result.stderr
        await until(pilot, lambda: any(p["name"] == "other" and p["is_active"] for p in app.profiles),
                    timeout=30, what="profile change from another process")


async def test_a_burst_is_folded_in_batches(tmp_path):
    """10,000 events land in O(1) each; one tick folds them and draws only the visible rows."""
    from hermit.services.events import RequestFinished, RequestStarted
    from hermit.tui.sample import make_sample_app

    app = make_sample_app(tmp_path, panel="live", rows=50)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            bus = app.services.bus
            started = [RequestStarted(f"b-{i}", 1748961000000, "chat", False, "openai", "m", "p", "c")
                       for i in range(5000)]
            finished = [RequestFinished(_entry(f"b-{i}")) for i in range(5000)]
            t0 = time.perf_counter()
            for ev in started:
                bus.publish(ev)
            for ev in finished:
                bus.publish(ev)
            per_event_us = (time.perf_counter() - t0) / 10_000 * 1e6
            t1 = time.perf_counter()
            app._tick()
            tick_ms = (time.perf_counter() - t1) * 1000
            assert app.feed.finished_total == 5000
            assert len(app.feed.rows) <= app.feed.capacity  # bounded
            assert per_event_us < 20, per_event_us
            assert tick_ms < 500, tick_ms
            await pilot.press("s")  # still responsive
            assert app.main.query_one("#live-panel").filter.status == "ok"
    finally:
        app.services.close()


async def test_a_real_burst_through_the_proxy_is_all_accounted(prepared, upstream):
    services, server, problem, settings = prepared()
    app = HermitApp(services, server, settings=settings, cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(server.started.wait(), 10)
        await settle(pilot)
        body = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=server.url + "/v1", timeout=20, limits=limits) as client:
            sem = asyncio.Semaphore(32)

            async def one() -> int:
                async with sem:
                    return (await client.post("/chat/completions", json=body)).status_code

            statuses = await asyncio.gather(*(one() for _ in range(300)))
        assert statuses == [200] * 300
        await until(pilot, lambda: (app._tick(), app.feed.finished_total)[1] == 300, what="all rows")
        assert app.main.query_one("#status-bar").info.rpm >= 300
        await quit_app(pilot)


def _entry(request_id: str):
    from hermit.core.models import LedgerEntry, now_ms

    return LedgerEntry(request_id=request_id, created_at=now_ms(), provider="openai", upstream_model="m",
                       endpoint="chat", stream=False, status_code=200, prompt_tokens=3, completion_tokens=4,
                       total_tokens=7, latency_ms=12.0)
