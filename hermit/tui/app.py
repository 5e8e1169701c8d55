"""HermitApp: owns the event loop, runs the proxy as a worker, and redraws from the live feed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any, Awaitable, Callable

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.worker import Worker, WorkerState

from hermit.services import tui_support
from hermit.tui.analytics_source import AnalyticsSource
from hermit.tui.clock import SystemClock
from hermit.tui.feed import LiveFeed
from hermit.tui.loading import LoadingMixin
from hermit.tui.screens.main import MainScreen
from hermit.tui.styles import css
from hermit.tui.widgets.status_bar import StatusInfo

log = logging.getLogger("hermit.tui")
SHUTDOWN_TIMEOUT = 40.0  # hypercorn's 5 s grace for in-flight requests, then the ledger drain


class HermitApp(LoadingMixin, App):
    """The dashboard. `server` is a ProxyServer (or a stand-in); None means watch only."""

    CSS_PATH = css("base.tcss", "main.tcss", "panels.tcss", "dialogs.tcss")
    TITLE = "Hermit"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, system=True),
        Binding("ctrl+t", "toggle_theme", "Light/dark", show=False),
    ]

    def __init__(self, services, server=None, *, clock=None, problem: tuple[str, str] | None = None,
                 settings=None, traffic: Callable[["HermitApp"], Awaitable[None]] | None = None,
                 tick_seconds: float = 0.25, cursor_blink: bool = True, initial_panel: str = "live",
                 backfill: int = 200, watch_seconds: float = 1.0) -> None:
        super().__init__()
        self.services = services
        self.server = server
        self.settings = settings or (services.settings if services else None)
        self.clock = clock or SystemClock()
        self.feed = LiveFeed(self.clock)
        self.db = tui_support.DbThread()
        self.analytics = AnalyticsSource(services) if services else None
        self.problem = problem
        self.traffic = traffic
        self.tick_seconds = tick_seconds
        self.cursor_blink = cursor_blink
        self.initial_panel = initial_panel
        self.backfill = backfill
        self.watch_seconds = watch_seconds
        self.mode = "server" if server is not None and problem is None else "watch"
        self.profiles: list[dict[str, Any]] = []
        self.server_error: str | None = None
        self.quitting = False
        self.ready = asyncio.Event()  # set once the first data load has been applied
        self._unsubscribe: Callable[[], None] | None = None
        self._server_worker = None
        self._seen_target: Any = None
        self._profile_events = 0
        self._last_id = 0
        self.main: MainScreen | None = None

    # -- start --------------------------------------------------------------------------------

    def get_default_screen(self) -> MainScreen:
        self.main = MainScreen(self.initial_panel)
        return self.main

    def on_mount(self) -> None:
        if self.problem is not None:
            from hermit.tui.screens.dialogs import ProblemDialog

            title, message = self.problem
            self.push_screen(ProblemDialog(title, message), self._problem_answer)
            self.ready.set()  # nothing to load until the answer
        else:
            self._start()
        self.set_interval(self.tick_seconds, self._tick)
        if not self.is_headless:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.action_quit)

    def _start(self) -> None:
        if self.services is not None:
            self._unsubscribe = self.services.bus.subscribe(self.feed.receive)
        if self.mode == "server":
            self._server_worker = self.run_worker(self._serve(), name="proxy", group="proxy", exit_on_error=False)
            if self.traffic is not None:
                self.run_worker(self._run_traffic(), name="traffic", group="traffic", exit_on_error=False)
        if self.services is not None:
            self.load_initial()
            if self.mode == "watch":
                self.watch_database()
        else:
            self.ready.set()

    def _problem_answer(self, answer: str | None) -> None:
        if answer != "watch":
            self.action_quit()
            return
        self.server, self.mode, self.problem = None, "watch", None
        self.ready.clear()
        self.open_watch()

    @work(exclusive=True, group="open", exit_on_error=False)
    async def open_watch(self) -> None:
        if self.services is None:
            try:
                self.services = await self.db.call(tui_support.open_services, self.settings, watch_only=True)
            except Exception as exc:  # noqa: BLE001 - say so; offer only to quit
                from hermit.tui.screens.dialogs import ProblemDialog

                message = f"{tui_support.describe_open_error(exc)}\nNothing can be shown without a database."
                self.push_screen(ProblemDialog("Hermit cannot open the database", message, can_watch=False),
                                 self._problem_answer)
                return
            self.analytics = AnalyticsSource(self.services)
        self._start()

    async def _serve(self) -> None:
        try:
            await self.server.run()
        except Exception as exc:  # noqa: BLE001 - the app keeps running, watch-only
            self.server_error = str(exc) or type(exc).__name__
            self.notify(self.server_error, title="The proxy stopped", severity="error", timeout=10)

    async def _run_traffic(self) -> None:
        started = getattr(self.server, "started", None)
        if started is not None:
            await started.wait()
        await self.traffic(self)

    # -- the tick: fold events, redraw what is visible --------------------------------------------

    def _tick(self) -> None:
        feed = self.feed
        feed.drain()
        main = self.main
        if main is None or not main.composed or self._exit:
            return
        try:
            self._redraw(main, feed)
        except NoMatches:  # the screen is being torn down (exit) while the timer fires
            pass

    def _redraw(self, main: MainScreen, feed: LiveFeed) -> None:
        panel = main.panel
        if panel == "live":
            main.query_one("#live-panel").redraw()
        elif panel == "analytics":
            analytics = main.query_one("#analytics-panel")
            if self.ready.is_set() and analytics.wants_refresh(feed.finished_total):
                analytics.load()
        target = getattr(getattr(self.server, "forwarder", None), "target", None)
        if feed.profile_events != self._profile_events or target is not self._seen_target:
            if self._seen_target is not None or feed.profile_events != self._profile_events:
                self.reload_profiles()
            self._profile_events, self._seen_target = feed.profile_events, target
        main.query_one("#status-bar").show(self.status_info(target))

    def status_info(self, target=None) -> StatusInfo:
        feed = self.feed
        if target is not None:
            profile = (target.profile_name or "-", target.provider.name, target.model)
        else:
            active = next((p for p in self.profiles if p["is_active"]), None)
            profile = (active["name"], active["provider"], active["model"]) if active else None
        return StatusInfo(
            state=self.server_state(), where=self.where(), profile=profile, rpm=feed.requests_per_minute(),
            in_flight=feed.in_flight, today_tokens=feed.today_tokens, today_cost=feed.today_cost,
            today_unpriced=feed.today_unpriced,
        )

    def server_state(self) -> str:
        if self.problem is not None:
            return "error"
        if self.mode == "watch":
            return "watching" if self.services is not None else "stopped"
        if self.server_error:
            return "error"
        state = getattr(self.server, "state", "running")
        if state == "stopped" and not self.quitting and self._server_worker is not None \
                and not self._server_worker.is_finished:
            return "starting"
        return state

    def where(self) -> str:
        if self.problem is not None:
            return self.problem[0].lower()
        if self.mode == "watch":
            if self.services is None:
                return "no database"
            return f"{tui_support.describe_database(self.services.settings.database_url)} (no proxy here)"
        if self.server_error:
            return self.server_error
        return f"on {self.server.url}"

    def panel_shown(self, panel: str) -> None:
        self._tick()

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """Every worker failure lands here: shown, logged, never a crash."""
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            log.error("worker %s failed", event.worker.name, exc_info=error)
            self.notify(f"{type(error).__name__}: {error}", title=f"{event.worker.name or 'task'} failed",
                        severity="error", timeout=8)
            if event.worker.group == "initial":
                self.ready.set()

    # -- screens --------------------------------------------------------------------------------

    def open_profile_form(self, profile: dict[str, Any] | None) -> None:
        from hermit.tui.screens.profile_form import ProfileForm

        def saved(name: str | None) -> None:
            if name:
                self.reload_profiles()
                self.main.query_one("#profiles-panel").result(True, f"saved profile {name}")

        self.push_screen(ProfileForm(profile), saved)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def action_help(self) -> None:
        from hermit.tui.screens.dialogs import HelpScreen

        self.push_screen(HelpScreen())

    # -- stop -----------------------------------------------------------------------------------

    def action_quit(self) -> None:
        """Stop accepting, let in-flight requests finish (5 s grace), drain the ledger, exit."""
        if self.quitting:
            self.exit()  # a second q: leave now
            return
        self.quitting = True
        self.run_worker(self._quit_sequence(), name="shutdown", group="shutdown", exit_on_error=False)

    async def _quit_sequence(self) -> None:
        for worker in list(self.workers):
            if worker.group in ("traffic", "watch"):
                worker.cancel()
        if self.mode == "server" and self.server is not None and self._server_worker is not None:
            self.notify("stopping: finishing in-flight requests and draining the ledger…", timeout=SHUTDOWN_TIMEOUT)
            self.server.request_stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server_worker.wait(), SHUTDOWN_TIMEOUT)
        if self.services is not None and self.services.writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.services.writer.flush, 30.0)
        self.feed.drain()
        self.exit()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.db.close(self.services.db if self.services is not None else None)
