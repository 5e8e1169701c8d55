"""StatusBar: where Hermit listens, the server state, the active profile, traffic and today's totals.

It is one widget that draws its two lines itself, so a new number repaints two lines and never
asks Textual for a layout pass (labels of changing width would, several times a second).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group
from rich.text import Text
from textual.widget import Widget

from hermit.tui.fmt import compact, money

STATE_GLYPH = {"starting": "◌", "running": "●", "stopping": "◌", "stopped": "○", "watching": "◉", "error": "✖"}
STATE_CLASS = {"running": "ok", "starting": "warn", "stopping": "warn", "stopped": "bad", "error": "bad",
               "watching": "watch"}


@dataclass(frozen=True)
class StatusInfo:
    """What the status bar shows; the app builds one per tick and the bar redraws only on change."""

    state: str = "starting"
    where: str = ""
    profile: tuple[str, str, str] | None = None  # name, provider, model
    rpm: int = 0
    in_flight: int = 0
    today_tokens: int = 0
    today_cost: float = 0.0
    today_unpriced: int = 0


class StatusBar(Widget):
    """Two lines at the top of the screen."""

    COMPONENT_CLASSES = {
        "status--brand", "status--ok", "status--warn", "status--bad", "status--watch", "status--dim",
        "status--strong",
    }

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.info: StatusInfo | None = None

    def show(self, info: StatusInfo) -> None:
        if info != self.info:
            self.info = info
            self.refresh()

    def render(self) -> Group:
        info = self.info or StatusInfo()
        width = max(20, self.size.width)
        style = self.get_component_rich_style
        strong = style("status--strong")
        # line 1: brand, state, where ... traffic
        left = Text(no_wrap=True, overflow="ellipsis")
        left.append(" Hermit ", style("status--brand"))
        left.append(f" {STATE_GLYPH.get(info.state, '●')} {info.state} ", style(f"status--{STATE_CLASS.get(info.state, 'ok')}"))
        left.append(info.where, style("status--dim"))
        flight = f" · {info.in_flight} in flight" if info.in_flight else ""
        right = Text(f"{info.rpm} req/min{flight} ", strong)
        first = self._line(left, right, width)
        # line 2: active profile ... today
        left = Text(" ", no_wrap=True, overflow="ellipsis")
        if info.profile is None:
            left.append("no active profile", style("status--warn"))
        else:
            name, provider, model = info.profile
            left.append(name, strong)
            left.append(f" · {provider} · {model}")
        # the unpriced count only where there is room: at 80 columns the profile needs the space
        unpriced = f" +{info.today_unpriced} unpriced" if info.today_unpriced and width >= 100 else ""
        right = Text(f"today {compact(info.today_tokens)} tok · {money(info.today_cost, places=4)}{unpriced} ", strong)
        return Group(first, self._line(left, right, width))

    @staticmethod
    def _line(left: Text, right: Text, width: int) -> Text:
        room = max(1, width - right.cell_len - 1)
        if left.cell_len > room:
            left.truncate(room, overflow="ellipsis")
        line = left.copy()
        line.append(" " * (width - left.cell_len - right.cell_len))
        line.append_text(right)
        line.no_wrap = True
        return line
