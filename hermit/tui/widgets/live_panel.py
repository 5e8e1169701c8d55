"""Live panel: requests as they happen, newest first; pause, filter and open any row."""

from __future__ import annotations

import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from hermit.tui.feed import STATUS_FILTERS, LiveFeed, LiveFilter
from hermit.tui.widgets.ledger_view import LedgerView

BUSY_EVENTS = 50  # events per tick (4 Hz) above which the list redraws at 2 Hz
BUSY_INTERVAL = 0.45


class LivePanel(Vertical):
    """The header line says what is shown; the LedgerView draws only the rows on screen."""

    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("f", "follow", "Follow", show=False),
        Binding("s", "status_filter", "Status"),
        Binding("m", "model_filter", "Model"),
        Binding("slash", "search", "Search"),
        Binding("escape", "clear_filters", "Clear", show=False),
    ]

    def __init__(self, feed: LiveFeed, clock, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.feed = feed
        self.clock = clock
        self.filter = LiveFilter()
        self.paused = False
        self._paused_at = 0
        self._drawn_version = -1
        self._drawn_at = 0.0
        self._header: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="live-header")
        yield Input(placeholder="search model, profile, client, status, error… (enter to apply, esc to clear)",
                    id="live-search", compact=True)
        yield LedgerView(self.clock, id="ledger")

    def on_mount(self) -> None:
        self.query_one("#live-search").display = False

    @property
    def view(self) -> LedgerView:
        return self.query_one(LedgerView)

    # -- redraw (called by the app's tick only while this panel is visible) -----------------

    def redraw(self, force: bool = False) -> None:
        feed = self.feed
        now = time.monotonic()
        if not force and feed.last_drained >= BUSY_EVENTS and now - self._drawn_at < BUSY_INTERVAL:
            return  # a busy proxy: the list moves too fast to read anyway, so draw half as often
        self._drawn_at = now
        changed = feed.version != self._drawn_version or force
        if not self.paused and changed:
            self._drawn_version = feed.version
            self.view.set_rows(feed.view(self.filter))
        elif any(r.status is None for r in self.view.rows[self.view.top:self.view.top + self.view.page]):
            self.view.refresh()  # in-flight rows show their running time
        self._draw_header()

    def _draw_header(self) -> None:
        feed, view = self.feed, self.view
        state = ("paused", feed.created_total - self._paused_at) if self.paused else (
            "following" if view.follow else "browsing", 0)
        key = (state, len(view.rows), feed.in_flight, self.filter, view.cursor)
        if key == self._header:
            return
        self._header = key
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.paused:
            text.append(" ⏸ paused", "bold")
            text.append(f" · {state[1]} new · p resumes", "")
        elif view.follow:
            text.append(" ● following newest", "bold")
        else:
            text.append(" ◆ browsing", "bold")
            text.append(" · home: back to newest")
        shown = len(view.rows)
        noun = "request" if self.filter.is_empty else "match"
        if shown != 1:
            noun += "s" if noun == "request" else "es"
        text.append(f" · {shown:,} {noun}")
        if feed.in_flight:
            text.append(f" · {feed.in_flight} in flight")
        if not self.filter.is_empty:
            text.append(f" · filter {self.filter.describe()}", "italic")
        header = self.query_one("#live-header", Static)
        header.set_class(self.paused, "-paused")
        header.set_class(not self.filter.is_empty, "-filtered")
        header.update(text, layout=False)  # one line, fixed size: no layout pass

    # -- actions ----------------------------------------------------------------------------

    def _apply(self, flt: LiveFilter) -> None:
        self.filter = flt
        self.redraw(force=True)

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            self._paused_at = self.feed.created_total
        self.redraw(force=True)

    def action_follow(self) -> None:
        self.paused = False
        self.view.action_follow()
        self.redraw(force=True)

    def action_status_filter(self) -> None:
        i = STATUS_FILTERS.index(self.filter.status)
        self._apply(LiveFilter(STATUS_FILTERS[(i + 1) % len(STATUS_FILTERS)], self.filter.model, self.filter.text))

    def action_model_filter(self) -> None:
        models = [None, *sorted(m for m in self.feed.models if m)]
        try:
            i = models.index(self.filter.model)
        except ValueError:
            i = 0
        self._apply(LiveFilter(self.filter.status, models[(i + 1) % len(models)], self.filter.text))

    def action_search(self) -> None:
        search = self.query_one("#live-search", Input)
        search.display = True
        search.value = self.filter.text
        search.focus()

    def action_clear_filters(self) -> None:
        search = self.query_one("#live-search", Input)
        search.display = False
        self.view.focus()
        self._apply(LiveFilter())

    @on(Input.Submitted, "#live-search")
    def _search(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#live-search", Input).display = False  # the header line shows the filter
        self.view.focus()
        self._apply(LiveFilter(self.filter.status, self.filter.model, event.value.strip()))

    @on(LedgerView.FollowChanged)
    def _follow_changed(self) -> None:
        self._draw_header()

    @on(LedgerView.Chosen)
    def _chosen(self, event: LedgerView.Chosen) -> None:
        from hermit.tui.screens.dialogs import RequestDetail

        self.app.push_screen(RequestDetail(event.row, self.clock))
