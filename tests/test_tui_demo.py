"""`hermit demo`: the simulated upstream's scenarios, and the whole demo alive in the TUI within seconds."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from hermit.services import tui_support
from hermit.tui.app import HermitApp
from hermit.tui.demo import FAILURES, FLAKY_EVERY, DemoTraffic, DemoUpstream, build_demo
from hermit.tui.sample import settle


def test_demo_upstream_maps_friendly_models_to_scenarios():
    up = DemoUpstream()
    try:
        chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        every = FAILURES["gpt-4o"][0]
        with httpx.Client(timeout=10) as client:
            statuses = [client.post(up.base_url + "/chat/completions", json=chat).status_code for _ in range(every)]
            assert statuses == [200] * (every - 1) + [429]
            flaky = [client.post(up.flaky_url + "/chat/completions", json=chat).status_code
                     for _ in range(FLAKY_EVERY)]
            assert flaky == [200] * (FLAKY_EVERY - 1) + [503]
            # the quick test never lands on the flaky turn
            probe = {"model": "m", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
            assert all(client.post(up.flaky_url + "/chat/completions", json=probe).status_code == 200
                       for _ in range(FLAKY_EVERY))
            stream = client.post(up.base_url + "/chat/completions", json={**chat, "model": "gpt-4o-mini",
                                                                           "stream": True})
            assert stream.headers["content-type"].startswith("text/event-stream")
    finally:
        up.close()


def test_traffic_mix_has_streams_embeddings_models_and_client_errors():
    traffic = DemoTraffic(seed=5)
    requests = [traffic.next_request() for _ in range(300)]
    paths = {p for p, _, _ in requests}
    models = {b.get("model") for p, b, _ in requests if p == "/chat/completions" and b.get("messages")}
    assert paths == {"/chat/completions", "/embeddings"}
    assert models == {"gpt-4o-mini", "gpt-4o", "claude-sonnet-4"}
    assert any(b.get("stream") for _, b, _ in requests) and any(not b.get("stream") for _, b, _ in requests)
    assert any(b.get("messages") == [] for _, b, _ in requests)  # some requests Hermit refuses (400)
    assert json.dumps(requests)  # plain JSON bodies


@pytest.mark.asyncio
async def test_demo_shows_every_panel_alive_within_seconds(tmp_path):
    services, server, settings, upstream, traffic = build_demo(tmp_path, history_rows=200)
    traffic.rate = 25.0
    app = HermitApp(services, server, settings=settings, traffic=traffic.run, cursor_blink=False)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            t0 = time.monotonic()
            print("settled")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                app._tick()
                live = [r for r in app.feed.rows.values() if r.client and r.client.startswith("demo-")]
                done = [r for r in live if not r.active]
                if (len(done) >= 40 and any(r.failed for r in done) and any(r.stream for r in done)
                        and len({r.model for r in done}) >= 3):
                    break
                await pilot.pause(0.1)
            else:
                raise AssertionError("demo traffic did not show every kind of request within 20 s")
            assert app.profiles and {p["name"] for p in app.profiles} >= {"demo-fast", "demo-slow", "demo-flaky"}
            await pilot.press("tab")
            panel = app.main.query_one("#analytics-panel")
            while panel.snapshot is None or panel.snapshot.summary["requests"] < 200:
                await pilot.pause(0.1)
            sent = traffic.sent
            print("alive after", time.monotonic() - t0)
            await pilot.press("q")
            while not app._exit:
                await pilot.pause(0.05)
            print("exited after", time.monotonic() - t0)
        rows = tui_support.recent_entries(5000)
        demo_rows = [e for e in rows if e.client and e.client.startswith("demo-")]
        assert len(demo_rows) >= min(sent, 40)
        assert server.state == "stopped"
    finally:
        services.close()
        upstream.close()
    await asyncio.sleep(0)
