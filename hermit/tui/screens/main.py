"""MainScreen: status bar, the three panels (Profiles, Live, Analytics) and the footer."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from hermit.tui.widgets.analytics_panel import AnalyticsPanel
from hermit.tui.widgets.live_panel import LivePanel
from hermit.tui.widgets.profiles_panel import ProfilesPanel
from hermit.tui.widgets.status_bar import StatusBar

PANELS = ("profiles", "live", "analytics")


class MainScreen(Screen):
    """Tab / Shift+Tab switch panels; each panel's keys show in the footer."""

    BINDINGS = [
        Binding("tab", "panel(1)", "Next panel", priority=True, show=False),
        Binding("shift+tab", "panel(-1)", "Prev panel", priority=True, show=False),
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, initial: str = "live") -> None:
        super().__init__()
        self.initial = initial
        self.composed = False  # set once the panels exist (the app's tick may fire before)

    def compose(self) -> ComposeResult:
        app = self.app
        yield StatusBar(id="status-bar")
        with TabbedContent(initial=self.initial, id="panels"):
            with TabPane("Profiles", id="profiles"):
                yield ProfilesPanel(id="profiles-panel")
            with TabPane("Live", id="live"):
                yield LivePanel(app.feed, app.clock, id="live-panel")
            with TabPane("Analytics", id="analytics"):
                yield AnalyticsPanel(app.clock, id="analytics-panel")
        yield Footer(id="footer")

    @property
    def panel(self) -> str:
        return self.query_one(TabbedContent).active or self.initial

    def on_mount(self) -> None:
        self.composed = True
        self.call_after_refresh(self._focus_panel)

    def action_panel(self, delta: int) -> None:
        i = PANELS.index(self.panel) if self.panel in PANELS else 0
        self.show_panel(PANELS[(i + delta) % len(PANELS)])

    def show_panel(self, name: str) -> None:
        self.query_one(TabbedContent).active = name
        self._focus_panel()

    @on(TabbedContent.TabActivated)
    def _tab_activated(self) -> None:
        self._focus_panel()
        self.app.panel_shown(self.panel)

    def _focus_panel(self) -> None:
        target = {
            "profiles": "#profile-table",
            "live": "#ledger",
            "analytics": "#analytics-panel",
        }.get(self.panel)
        if target:
            self.query_one(target).focus()
