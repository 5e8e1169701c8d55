"""Pilot tests of the TUI's keys and flows, on deterministic sample data and the fake upstream."""

from __future__ import annotations

import asyncio

import pytest

from conftest import until
from hermit.services import tui_support
from hermit.tui.sample import make_sample_app, settle

pytestmark = pytest.mark.asyncio


def upstream_profiles(upstream):
    return (
        dict(name="good", provider="openai-compatible", base_url=upstream.base_url, model="fake-model-a",
             api_key="sk-test-good-000000000001"),
        dict(name="revoked", provider="openai-compatible", base_url=upstream.url("error-401"), model="fake-model-a",
             api_key="sk-test-revoked-00000002"),
        dict(name="spare", provider="openai-compatible", base_url=upstream.base_url, model="fake-model-b"),
    )


@pytest.fixture
def sample_app(tmp_path):
    apps = []

    def _make(**kw):
        folder = tmp_path / f"app{len(apps)}"
        folder.mkdir()
        app = make_sample_app(folder, **kw)
        apps.append(app)
        return app

    yield _make
    for app in apps:
        app.services.close()


@pytest.fixture
def profile_app(sample_app, upstream, tmp_path):
    def _make(**kw):
        return sample_app(panel="profiles", profiles=upstream_profiles(upstream), active="spare", rows=40, **kw)

    return _make


# -- panels, help, quit ------------------------------------------------------------------------


async def test_tab_cycles_panels_and_footer_shows_panel_keys(sample_app, tmp_path):
    app = sample_app(panel="live")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.main.panel == "live"
        assert "p" in app.active_bindings and "slash" in app.active_bindings
        await pilot.press("tab")
        assert app.main.panel == "analytics"
        assert "1" in app.active_bindings
        await pilot.press("tab")
        assert app.main.panel == "profiles"
        assert "a" in app.active_bindings and "enter" in app.active_bindings
        await pilot.press("shift+tab")
        assert app.main.panel == "analytics"


async def test_question_mark_opens_help(sample_app, tmp_path):
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        from hermit.tui.screens.dialogs import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is app.main


async def test_status_bar_shows_listen_address_profile_and_today(sample_app, tmp_path):
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        info = app.main.query_one("#status-bar").info
        assert info.state == "running"
        assert info.where == "on http://127.0.0.1:8800"
        assert info.profile == ("openai-main", "openai", "gpt-4o-mini")
        assert info.in_flight == 2
        assert info.today_tokens > 0 and info.today_cost > 0
        assert info.rpm > 0


async def test_q_quits_and_stops_the_server(sample_app, tmp_path):
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        server = app.server
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running or server.state == "stopped", what="exit")
    assert server.state == "stopped"


# -- Live ----------------------------------------------------------------------------------------


async def test_live_follow_pause_filters_and_details(sample_app, tmp_path):
    app = sample_app(panel="live")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        panel = app.main.query_one("#live-panel")
        view = panel.view
        assert view.follow and view.cursor == 0
        assert view.rows[0].request_id == "live-chat-2"  # newest first, in flight
        total = len(view.rows)

        await pilot.press("s")  # ok
        assert panel.filter.status == "ok" and all(not r.failed and not r.active for r in view.rows)
        await pilot.press("s")  # errors
        assert panel.filter.status == "errors" and view.rows and all(r.failed for r in view.rows)
        await pilot.press("s")  # in flight
        assert [r.request_id for r in view.rows] == ["live-chat-2", "live-stream-1"]
        await pilot.press("s")  # all again
        assert len(view.rows) == total

        await pilot.press("m")
        model = panel.filter.model
        assert model and all(r.model == model for r in view.rows)
        await pilot.press("escape")
        assert panel.filter.is_empty

        await pilot.press("slash")
        await pilot.press(*"claude", "enter")
        assert panel.filter.text == "claude"
        assert view.rows and all("claude" in r.model for r in view.rows)
        await pilot.press("escape")
        assert len(view.rows) == total

        # moving away from the top stops following; home follows again
        await pilot.press("down", "down")
        assert not view.follow and view.cursor == 2
        chosen = view.selected.request_id
        app.feed.receive(_started("brand-new"))
        app._tick()
        assert view.selected.request_id == chosen  # the cursor stays on its request
        await pilot.press("home")
        assert view.follow and view.selected.request_id == "brand-new"

        # pause freezes the list and counts what arrives meanwhile
        await pilot.press("p")
        before = [r.request_id for r in view.rows]
        app.feed.receive(_started("while-paused"))
        app._tick()
        assert [r.request_id for r in view.rows] == before and panel.paused
        await pilot.press("p")
        app._tick()
        assert view.rows[0].request_id == "while-paused"

        await pilot.press("down", "enter")
        from hermit.tui.screens.dialogs import RequestDetail

        assert isinstance(app.screen, RequestDetail)
        assert app.screen.row.request_id == view.rows[1].request_id
        await pilot.press("escape")
        assert app.screen is app.main


def _started(rid: str):
    from hermit.services.events import RequestStarted

    return RequestStarted(rid, 1748961000000, "chat", True, "openai", "gpt-4o-mini", "openai-main", "pytest")


async def test_streaming_row_updates_tokens_then_finishes(sample_app, tmp_path):
    from hermit.core.models import LedgerEntry
    from hermit.services.events import RequestFinished, RequestProgress

    app = sample_app(panel="live", in_flight=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        bus = app.services.bus
        bus.publish(_started("s-1"))
        app._tick()
        row = app.feed.rows["s-1"]
        assert row.active
        bus.publish(RequestProgress("s-1", 32))
        app._tick()
        assert row.completion_tokens == 32
        entry = LedgerEntry(request_id="s-1", created_at=1748961000000, provider="openai", upstream_model="gpt-4o-mini",
                            endpoint="chat", stream=True, status_code=200, prompt_tokens=10, completion_tokens=40,
                            total_tokens=50, cost_usd=0.001, latency_ms=900, ttft_ms=120)
        bus.publish(RequestFinished(entry))
        app._tick()
        assert row.status == 200 and row.total_tokens == 50 and row.ttft_ms == 120
        line = app.main.query_one("#ledger").render_line(1).text
        assert "200" in line and "10→40" in line


# -- Analytics -------------------------------------------------------------------------------


async def test_analytics_period_keys_and_refresh(sample_app, tmp_path):
    app = sample_app(panel="analytics")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        panel = app.main.query_one("#analytics-panel")
        assert panel.snapshot.period == "day" and panel.snapshot.bucket == "hour"
        day_requests = panel.snapshot.summary["requests"]
        for key, period, bucket in (("1", "hour", "minute"), ("3", "week", "hour"), ("4", "month", "day"),
                                    ("5", "all", "day"), ("2", "day", "hour")):
            await pilot.press(key)
            await until(pilot, lambda: panel.snapshot.period == period and not panel._loading, what=period)
            assert panel.snapshot.bucket == bucket
        assert panel.snapshot.summary["requests"] == day_requests
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: panel.snapshot.period == "week", what="next period")
        # r refreshes: new rows show up
        from hermit.tui.sample import SAMPLE_NOW, sample_entries

        now = int(SAMPLE_NOW.timestamp() * 1000)
        extra = sample_entries(now - 1000, 5, seed=99)
        for e in extra:
            e.request_id = "extra-" + e.request_id
            e.created_at = now - 1000
        before = panel.snapshot.summary["requests"]
        await app.db.call(tui_support.insert_entries, extra)
        await pilot.press("r")
        await until(pilot, lambda: panel.snapshot.summary["requests"] == before + 5, what="refresh")


async def test_analytics_totals_match_the_series_and_by_model(sample_app, tmp_path):
    app = sample_app(panel="analytics")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        snap = app.main.query_one("#analytics-panel").snapshot
        assert sum(i["requests"] for i in snap.series) == snap.summary["requests"]
        assert sum(i["total_tokens"] for i in snap.series) == snap.summary["total_tokens"]
        assert sum(m["requests"] for m in snap.by_model) == snap.summary["requests"]


# -- Profiles ----------------------------------------------------------------------------------


async def test_enter_activates_after_quick_test(profile_app, upstream):
    app = profile_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        panel = app.main.query_one("#profiles-panel")
        assert [p["name"] for p in panel.profiles] == ["good", "revoked", "spare"]
        assert panel.selected["name"] == "good"
        await pilot.press("enter")
        await until(pilot, lambda: "is active" in str(panel.query_one("#profile-status").render()), what="activation")
        assert next(p for p in panel.profiles if p["is_active"])["name"] == "good"
        current = await app.db.call(app.services.profiles.current)
        assert current.name == "good"
        history = await app.db.call(app.services.profiles.history, 1)
        assert history[0].profile_name == "good" and history[0].source == "tui"
        app._tick()
        assert app.main.query_one("#status-bar").info.profile[0] == "good"
        # the quick test is a ledger row like any request
        assert any(r.client == "hermit-quick-test" for r in app.feed.rows.values())


async def test_failed_quick_test_changes_nothing(profile_app):
    app = profile_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        panel = app.main.query_one("#profiles-panel")
        await pilot.press("home", "down")
        assert panel.selected["name"] == "revoked"
        await pilot.press("enter")
        status = panel.query_one("#profile-status")
        await until(pilot, lambda: "failed" in str(status.render()), what="failure")
        assert "rejected the API key" in str(status.render())
        current = await app.db.call(app.services.profiles.current)
        assert current.name == "spare"


async def test_t_tests_without_switching(profile_app):
    app = profile_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        panel = app.main.query_one("#profiles-panel")
        await pilot.press("home")
        await pilot.press("t")
        status = panel.query_one("#profile-status")
        await until(pilot, lambda: "quick test ok" in str(status.render()), what="test")
        current = await app.db.call(app.services.profiles.current)
        assert current.name == "spare"


async def test_a_adds_a_profile_with_provider_defaults(profile_app, upstream):
    from textual.widgets import Checkbox, Input, Select

    from hermit.tui.screens.profile_form import ProfileForm

    app = profile_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, ProfileForm)
        assert form.query_one("#f-base_url", Input).value == "https://api.openai.com/v1"
        form.query_one("#f-provider", Select).value = "vllm"
        await pilot.pause()
        assert form.query_one("#f-base_url", Input).value == "http://localhost:8000/v1"
        assert form.query_one("#f-model", Input).value == "meta-llama/Llama-3.3-70B-Instruct"
        assert form.query_one("#f-api_key", Input).password
        await pilot.click("#f-name")
        await pilot.press(*"my-vllm")
        form.query_one("#f-base_url", Input).value = upstream.base_url
        form.query_one("#f-api_key", Input).value = "sk-vllm-secret-0000000099"
        form.query_one("#f-activate", Checkbox).value = True
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is app.main, what="form closed")
        await until(pilot, lambda: any(p["name"] == "my-vllm" for p in app.profiles), what="reload")
        saved = next(p for p in app.profiles if p["name"] == "my-vllm")
        assert saved["provider"] == "vllm" and saved["base_url"] == upstream.base_url.rstrip("/")
        assert saved["api_key_hint"] == "sk-…0099" and saved["is_active"]


async def test_e_edit_with_bad_input_shows_errors_next_to_fields(profile_app):
    from textual.widgets import Input

    app = profile_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("home")
        await pilot.press("e")
        form = app.screen
        form.query_one("#f-base_url", Input).value = "not a url"
        form.query_one("#f-default_max_tokens", Input).value = "lots"
        form.query_one("#f-name", Input).value = "123"
        await pilot.press("ctrl+s")
        await pilot.pause()
        errors = {k: form.query_one(f"#e-{k}") for k in ("base_url", "default_max_tokens", "name", "model")}
        assert errors["base_url"].display and "http://" in str(errors["base_url"].render())
        assert errors["default_max_tokens"].display and "whole number" in str(errors["default_max_tokens"].render())
        assert errors["name"].display and "number" in str(errors["name"].render())
        assert not errors["model"].display
        assert form.query_one("#f-base_url").has_class("-invalid")
        # fixing the fields saves (after the quick test)
        form.query_one("#f-base_url", Input).value = app.profiles[0]["base_url"]
        form.query_one("#f-default_max_tokens", Input).value = "512"
        form.query_one("#f-name", Input).value = "good-renamed"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is app.main, what="saved")
        await until(pilot, lambda: app.profiles[0]["name"] == "good-renamed", what="reload")
        assert app.profiles[0]["default_max_tokens"] == 512
        assert app.profiles[0]["api_key_hint"] == "sk-…0001"  # an empty key field keeps the key


async def test_edit_refused_by_quick_test_saves_nothing(profile_app, upstream):
    from textual.widgets import Input

    app = profile_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("home", "e")
        form = app.screen
        form.query_one("#f-base_url", Input).value = upstream.url("error-404")
        await pilot.press("ctrl+s")
        status = form.query_one("#form-status")
        await until(pilot, lambda: "nothing saved" in str(status.render()), what="refusal")
        await pilot.press("escape")
        profile = await app.db.call(app.services.profiles.get, "good")
        assert profile.base_url == upstream.base_url.rstrip("/")


async def test_d_deletes_after_confirmation_but_never_the_active(profile_app):
    app = profile_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        panel = app.main.query_one("#profiles-panel")
        await pilot.press("end")
        await pilot.press("down", "down", "down")
        assert panel.selected["name"] == "spare"
        await pilot.press("d")  # active: refused, no dialog
        assert app.screen is app.main
        assert "activate another" in str(panel.query_one("#profile-status").render())
        await pilot.press("up")
        assert panel.selected["name"] == "revoked"
        await pilot.press("d")
        from hermit.tui.screens.dialogs import ConfirmDialog

        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        assert len(app.profiles) == 3
        await pilot.press("d")
        await pilot.press("y")
        await until(pilot, lambda: len(app.profiles) == 2, what="delete")
        assert [p["name"] for p in app.profiles] == ["good", "spare"]


async def test_h_shows_activation_history(profile_app):
    app = profile_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("h")
        from textual.widgets import DataTable

        from hermit.tui.screens.dialogs import HistoryScreen

        assert isinstance(app.screen, HistoryScreen)
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1, what="history")
        assert "spare" in str(table.get_row_at(0))
        await pilot.press("escape")
        assert app.screen is app.main


async def test_activation_from_elsewhere_shows_at_once(profile_app):
    app = profile_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await tui_support.activate(app.services, app.db, "good", "http")  # as an HTTP route would
        await until(pilot, lambda: next(p for p in app.profiles if p["is_active"])["name"] == "good",
                    what="reload")
        await asyncio.sleep(0)
