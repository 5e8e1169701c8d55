"""LedgerView: the Live panel's request list, drawn line by line (only the rows on screen)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from hermit.tui.feed import LiveRow
from hermit.tui.fmt import compact, duration, fit, money


@dataclass(frozen=True)
class Column:
    title: str
    width: int  # 0: takes the remaining width
    right: bool
    min_total: int  # shown when the view is at least this wide


def _status(row: LiveRow, now_ms: int) -> str:
    if row.status is None:
        return "…"
    return str(row.status)


def _kind(row: LiveRow, now_ms: int) -> str:
    if row.endpoint == "embeddings":
        return "embed"
    return "stream" if row.stream else "chat"


def _tokens(row: LiveRow, now_ms: int) -> str:
    if row.status is None:
        return f"→{compact(row.completion_tokens)}" if row.stream else "…"
    return f"{compact(row.prompt_tokens)}→{compact(row.completion_tokens)}"


def _latency(row: LiveRow, now_ms: int) -> str:
    if row.status is None:
        return duration(max(0, now_ms - row.started_ms))
    return duration(row.latency_ms)


COLUMNS: tuple[tuple[Column, Callable[[LiveRow, int], str]], ...] = (
    (Column("TIME", 8, False, 0), lambda r, now: ""),  # filled with the clock's zone
    (Column("ST", 3, True, 0), _status),
    (Column("TYPE", 6, False, 0), _kind),
    (Column("MODEL", 0, False, 0), lambda r, now: r.model or "-"),
    (Column("TOKENS", 11, True, 0), _tokens),
    (Column("COST", 9, True, 0), lambda r, now: "" if r.status is None else money(r.cost_usd)),
    (Column("LATENCY", 7, True, 0), _latency),
    (Column("TTFT", 6, True, 0), lambda r, now: duration(r.ttft_ms) if r.ttft_ms is not None else "-"),
    (Column("PROFILE", 14, False, 100), lambda r, now: r.profile or "-"),
    (Column("CLIENT", 16, False, 118), lambda r, now: r.client or "-"),
    (Column("ERROR", 0, False, 140), lambda r, now: (r.error or "").replace("\n", " ")),
)


class LedgerView(Widget, can_focus=True):
    """Newest request first; the cursor follows the newest until you move it."""

    COMPONENT_CLASSES = {
        "ledger--header", "ledger--active", "ledger--error", "ledger--ok", "ledger--cursor", "ledger--dim",
    }
    BINDINGS = [
        Binding("enter", "details", "Details"),
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("k", "move(-1)", "Up", show=False),
        Binding("j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "follow", "Newest", show=False),
        Binding("end", "last", "Oldest", show=False),
    ]

    class Chosen(Message):
        """Enter (or a double click) on a row."""

        def __init__(self, row: LiveRow) -> None:
            super().__init__()
            self.row = row

    class FollowChanged(Message):
        def __init__(self, follow: bool) -> None:
            super().__init__()
            self.follow = follow

    def __init__(self, clock, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.rows: list[LiveRow] = []
        self.cursor = 0
        self.top = 0
        self.follow = True
        self._selected: str | None = None
        self._layout_cache: dict[int, list] = {}
        self._style_cache: dict[str, Style] | None = None
        self._times: dict[int, str] = {}

    # -- data ---------------------------------------------------------------------------------

    def set_rows(self, rows: list[LiveRow]) -> None:
        """New list (newest first). Following: stay on the newest; else stay on the same request."""
        self.rows = rows
        if self.follow or not rows:
            self.cursor = self.top = 0
        else:
            index = self._index_of(self._selected)
            if index is None:
                self.cursor = min(self.cursor, len(rows) - 1)
            else:
                self.top = max(0, self.top + index - self.cursor)
                self.cursor = index
        self._selected = rows[self.cursor].request_id if rows else None
        self._clamp()
        self.refresh()

    def _index_of(self, request_id: str | None) -> int | None:
        if request_id is None:
            return None
        lo = max(0, self.cursor - 50)
        for i in range(lo, len(self.rows)):  # new rows only push it down: search from near the old spot
            if self.rows[i].request_id == request_id:
                return i
        for i in range(0, lo):
            if self.rows[i].request_id == request_id:
                return i
        return None

    @property
    def page(self) -> int:
        return max(1, self.size.height - 1)

    def _clamp(self) -> None:
        n = len(self.rows)
        self.cursor = max(0, min(self.cursor, n - 1)) if n else 0
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + self.page:
            self.top = self.cursor - self.page + 1
        self.top = max(0, min(self.top, max(0, n - self.page)))

    @property
    def selected(self) -> LiveRow | None:
        return self.rows[self.cursor] if self.rows else None

    # -- actions ------------------------------------------------------------------------------

    def _set_follow(self, follow: bool) -> None:
        if follow != self.follow:
            self.follow = follow
            self.post_message(self.FollowChanged(follow))

    def action_move(self, delta: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))
        self._set_follow(self.cursor == 0 and delta < 0 and self.follow)
        self._selected = self.rows[self.cursor].request_id
        self._clamp()
        self.refresh()

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self.page)

    def action_follow(self) -> None:
        self._set_follow(True)
        self.cursor = self.top = 0
        self._selected = self.rows[0].request_id if self.rows else None
        self.refresh()

    def action_last(self) -> None:
        self.action_move(len(self.rows))

    def action_details(self) -> None:
        if self.selected is not None:
            self.post_message(self.Chosen(self.selected))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.action_move(3)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.action_move(-3)

    def on_click(self, event: events.Click) -> None:
        index = self.top + event.y - 1
        if event.y >= 1 and 0 <= index < len(self.rows):
            self.cursor = index
            self._selected = self.rows[index].request_id
            self._set_follow(index == 0 and self.follow)
            self.refresh()
            if event.chain >= 2:
                self.action_details()

    # -- drawing ------------------------------------------------------------------------------

    def _layout(self, width: int) -> list[tuple[Column, Callable[[LiveRow, int], str], int]]:
        cached = self._layout_cache.get(width)
        if cached is not None:
            return cached
        cols = [(c, fn) for c, fn in COLUMNS if width >= c.min_total]
        fixed = sum(c.width for c, _ in cols if c.width) + len(cols)  # one space before each column
        spare = max(0, width - fixed)
        flexible = sum(1 for c, _ in cols if not c.width)
        model_w = max(8, spare if flexible == 1 else min(28, spare // 2))
        error_w = max(8, spare - model_w)
        out = [(c, fn, c.width or (model_w if c.title == "MODEL" else error_w)) for c, fn in cols]
        self._layout_cache = {width: out}
        return out

    def _time(self, row: LiveRow) -> str:
        second = row.started_ms // 1000
        text = self._times.get(second)
        if text is None:
            if len(self._times) > 4096:
                self._times.clear()
            text = self._times[second] = self.clock.local(row.started_ms).strftime("%H:%M:%S")
        return text

    def _styles(self) -> dict[str, Style]:
        """Resolved styles, computed once (CSS lookups are the costly part of drawing a line)."""
        if self._style_cache is None:
            base = self.rich_style
            get = self.get_component_rich_style
            cursor = get("ledger--cursor") if self.has_focus else Style(underline=True)
            styles = {"base": base}
            for name in ("header", "active", "error", "ok", "dim"):
                styles[name] = base + get(f"ledger--{name}")
                styles[name + "+cursor"] = styles[name] + cursor
            self._style_cache = styles
        return self._style_cache

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_cache = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        layout = self._layout(width)
        styles = self._styles()
        if y == 0:
            line = "".join(" " + (c.title.rjust(w) if c.right else c.title.ljust(w)) for c, _, w in layout)
            return Strip([Segment(set_cell_size(line, width), styles["header"])], width)
        index = self.top + y - 1
        if index >= len(self.rows):
            if y == 1 and not self.rows:
                return Strip([Segment(set_cell_size(" no requests yet", width), styles["dim"])], width)
            return Strip.blank(width, styles["base"])
        row = self.rows[index]
        now = self.clock.now_ms()
        parts = []
        for c, fn, w in layout:
            value = fit(self._time(row) if c.title == "TIME" else fn(row, now), w)
            parts.append(" " + (value.rjust(w) if c.right else value.ljust(w)))
        kind = "active" if row.status is None else "error" if row.failed else "ok"
        if index == self.cursor:
            kind += "+cursor"
        return Strip([Segment(set_cell_size("".join(parts), width), styles[kind])], width)

    def on_focus(self) -> None:
        self._style_cache = None
        self.refresh()

    def on_blur(self) -> None:
        self._style_cache = None
        self.refresh()
