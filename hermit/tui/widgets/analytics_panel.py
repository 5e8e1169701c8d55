"""Analytics panel: tokens, requests and errors over time, tokens and cost by model, totals beside."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from hermit.tui.analytics_source import (
    PERIOD_KEYS,
    PERIODS,
    AnalyticsSnapshot,
    period_info,
)
from hermit.tui.fmt import compact, duration, grouped, money
from hermit.tui.widgets.charts import ModelBars, TimeChart

X_FORMATS = {"minute": "%H:%M", "hour": "%H:%M", "day": "%b %d", "week": "%b %d", "month": "%Y-%m"}
AUTO_REFRESH_SECONDS = 2.0


class AnalyticsPanel(Horizontal, can_focus=True):
    """Charts on the left, totals on the right; numbers match `hermit report` for the same period."""

    BINDINGS = [
        Binding("1", "period('hour')", "Hour"),
        Binding("2", "period('day')", "Day"),
        Binding("3", "period('week')", "Week"),
        Binding("4", "period('month')", "Month"),
        Binding("5", "period('all')", "All"),
        Binding("left_square_bracket", "shift(-1)", "Prev period", show=False),
        Binding("right_square_bracket", "shift(1)", "Next period", show=False),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self, clock, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.period = "day"
        self.snapshot: AnalyticsSnapshot | None = None
        self.loaded_at_ms = 0
        self.loaded_finished = -1
        self._loading = False

    def compose(self) -> ComposeResult:
        with Vertical(id="charts"):
            yield Static("", id="period-bar")
            yield TimeChart("Tokens", "prompt", "completion", id="tokens-chart")
            yield TimeChart("Requests", "ok", "errors", id="requests-chart")
            yield ModelBars(id="model-bars")
        yield Static("", id="totals")

    def on_mount(self) -> None:
        self._draw_period_bar()

    # -- data ---------------------------------------------------------------------------------

    def wants_refresh(self, finished_total: int) -> bool:
        """Auto refresh: new traffic since the last load, at most every couple of seconds."""
        if self._loading or self.snapshot is None:
            return not self._loading
        elapsed = (self.clock.now_ms() - self.loaded_at_ms) / 1000
        return finished_total != self.loaded_finished and elapsed >= AUTO_REFRESH_SECONDS

    @work(exclusive=True, group="analytics", exit_on_error=False)
    async def load(self) -> None:
        self._loading = True
        app = self.app
        finished = app.feed.finished_total
        if app.analytics is None:
            self._loading = False
            return
        try:
            snap = await app.db.call(app.analytics.snapshot, self.period, self.clock.now_ms(), self.clock.tz)
        except Exception as exc:  # noqa: BLE001 - shown in the panel, never a crash
            self.query_one("#totals", Static).update(Text(f"cannot load analytics:\n{exc}"))
            return
        finally:
            self._loading = False
        self.loaded_at_ms = self.clock.now_ms()
        self.loaded_finished = finished
        self.apply(snap)

    def apply(self, snap: AnalyticsSnapshot) -> None:
        self.snapshot = snap
        fmt = X_FORMATS.get(snap.bucket, "%H:%M")
        if snap.bucket == "hour" and snap.period in ("week", "all"):
            fmt = "%b %d %H:%M"
        starts = [item["bucket_start"] for item in snap.series]

        def fmt_x(ms: int) -> str:
            return self.clock.local(ms).strftime(fmt)

        with self.app.batch_update():
            self.query_one("#tokens-chart", TimeChart).set_series(
                starts, [i["prompt_tokens"] for i in snap.series], [i["completion_tokens"] for i in snap.series],
                fmt_x, snap.bucket,
            )
            failed = [i.get("failed", 0) for i in snap.series]
            self.query_one("#requests-chart", TimeChart).set_series(
                starts, [i["requests"] - f for i, f in zip(snap.series, failed)], failed, fmt_x, snap.bucket,
            )
            self.query_one("#model-bars", ModelBars).items = tuple(
                (m["model"] or "-", m["total_tokens"], money(m.get("cost_usd")), m["requests"]) for m in snap.by_model
            )
            self.query_one("#totals", Static).update(self._totals(snap))
            self._draw_period_bar()

    def _totals(self, snap: AnalyticsSnapshot) -> Group:
        s = snap.summary
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(ratio=1, no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        label = period_info(snap.period)[1]
        title = Text(f"Totals · {label}", "bold", no_wrap=True, overflow="ellipsis")
        rows = [
            ("requests", grouped(s.get("requests"))),
            ("  ok", grouped(s.get("successful"))),
            ("  failed", grouped(s.get("failed"))),
            ("prompt", grouped(s.get("prompt_tokens"))),
            ("completion", grouped(s.get("completion_tokens"))),
            ("total tokens", grouped(s.get("total_tokens"))),
            ("  cached", grouped(s.get("cached_tokens"))),
            ("  reasoning", grouped(s.get("reasoning_tokens"))),
            ("cost", money(s.get("cost_usd"), places=4)),
            ("  unpriced", f"{grouped(s.get('unpriced_requests'))} req"),
            ("avg latency", duration(s.get("avg_latency_ms"))),
        ]
        for name, value in rows:
            style = "b" if not name.startswith(" ") else ""
            if name == "  failed" and s.get("failed"):
                value = Text(value, f"bold {self.app.current_theme.error or 'red'}")
            table.add_row(Text(name, style), value)
        if snap.series:
            peak = max(snap.series, key=lambda i: i["total_tokens"])
            if peak["total_tokens"]:
                table.add_row(Text(f"peak {snap.bucket}", "b"), compact(peak["total_tokens"]))
                table.add_row(Text("  at", ""), self.clock.local(peak["bucket_start"]).strftime("%b %d %H:%M"))
        return Group(title, table)

    def _draw_period_bar(self) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" Period ")
        for i, (key, label, _, _) in enumerate(PERIODS, start=1):
            name = {"hour": "hour", "day": "day", "week": "week", "month": "month", "all": "all"}[key]
            if key == self.period:
                text.append(f" {i} {name} ", "reverse bold")
            else:
                text.append(f" {i} {name} ")
        self.query_one("#period-bar", Static).update(text)

    # -- actions ----------------------------------------------------------------------------

    def action_period(self, key: str) -> None:
        self.period = key
        self._draw_period_bar()
        self.load()

    def action_shift(self, delta: int) -> None:
        i = PERIOD_KEYS.index(self.period)
        self.action_period(PERIOD_KEYS[(i + delta) % len(PERIOD_KEYS)])

    def action_refresh(self) -> None:
        self.load()
