"""Bar charts drawn with block glyphs: stacked columns over time, and horizontal bars by model.

Colours come from component classes in tui_styles/panels.tcss, so they follow the theme.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from hermit.tui.fmt import compact

V_BLOCKS = " ▁▂▃▄▅▆▇█"
H_BLOCKS = " ▏▎▍▌▋▊▉█"


def resample(values: Sequence[float], columns: int) -> tuple[list[float], int]:
    """Group consecutive buckets so they fit in `columns`; returns (values, group size)."""
    n = len(values)
    if n <= columns or columns <= 0:
        return list(values), 1
    k = math.ceil(n / columns)
    return [sum(values[i:i + k]) for i in range(0, n, k)], k


def column_widths(width: int, n: int) -> tuple[list[int], int]:
    """Equal columns with the newest at the right edge; spread unevenly only when equal ones would
    leave more than a quarter of the width empty (many narrow buckets)."""
    bar = max(1, width // n)
    lead = max(0, width - bar * n)
    if lead * 4 <= width:
        return [bar] * n, lead
    edges = [round(i * width / n) for i in range(n + 1)]
    return [max(1, edges[i + 1] - edges[i]) for i in range(n)], 0


class StackedColumns:
    """A Rich renderable: columns of `a` with `b` stacked on top, `height` rows tall."""

    def __init__(self, a: Sequence[float], b: Sequence[float], height: int, style_a: Style, style_b: Style,
                 empty: Style) -> None:
        self.a, self.b, self.height = a, b, max(1, height)
        self.style_a, self.style_b, self.empty = style_a, style_b, empty

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        n = len(self.a)
        if n == 0:
            for _ in range(self.height):
                yield Segment(" " * width, self.empty)
                yield Segment.line()
            return
        widths, lead = column_widths(width, n)
        gap = 1 if min(widths) >= 3 else 0
        top = max((x + y for x, y in zip(self.a, self.b)), default=0) or 1
        units = self.height * 8
        cols = []
        for x, y in zip(self.a, self.b):
            ta = round(x / top * units)
            tt = round((x + y) / top * units)
            if x > 0 and ta == 0:
                ta = 1
            tt = max(tt, ta + (1 if y > 0 else 0))
            cols.append((ta, min(tt, units)))
        mixed = Style(color=self.style_a.color, bgcolor=self.style_b.color)
        for row in range(self.height - 1, -1, -1):
            base = row * 8
            segs: list[Segment] = [Segment(" " * lead, self.empty)] if lead else []
            used = lead
            for (ta, tt), bar in zip(cols, widths):
                fa = min(8, max(0, ta - base))
                ft = min(8, max(0, tt - base))
                if fa == 8:
                    glyph, style = "█", self.style_a
                elif fa > 0 and ft == 8:
                    glyph, style = V_BLOCKS[fa], mixed
                elif fa > 0:
                    glyph, style = V_BLOCKS[ft], self.style_a if fa * 2 >= ft else self.style_b
                elif ft > 0:
                    glyph, style = V_BLOCKS[ft], self.style_b
                else:
                    glyph, style = " ", self.empty
                segs.append(Segment(glyph * (bar - gap), style))
                if gap:
                    segs.append(Segment(" ", self.empty))
                used += bar
            if used < width:
                segs.append(Segment(" " * (width - used), self.empty))
            yield from segs
            yield Segment.line()


class TimeChart(Widget):
    """Two stacked series over time with a title line and an x axis."""

    COMPONENT_CLASSES = {"chart--a", "chart--b", "chart--axis", "chart--title"}
    data: reactive[tuple] = reactive((), layout=False)

    def __init__(self, title: str, label_a: str, label_b: str, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.label_a, self.label_b = label_a, label_b
        self.starts: list[int] = []
        self.fmt_x: Callable[[int], str] = str
        self.unit = ""

    def set_series(self, starts: list[int], a: list[float], b: list[float], fmt_x: Callable[[int], str],
                   unit: str) -> None:
        self.starts, self.fmt_x, self.unit = starts, fmt_x, unit
        self.data = (tuple(a), tuple(b))

    def render(self):
        width = max(10, self.size.width)
        height = max(3, self.size.height)
        a, b = self.data or ((), ())
        columns = width
        ra, k = resample(a, columns)
        rb, _ = resample(b, columns)
        title_style = self.get_component_rich_style("chart--title")
        sa = self.get_component_rich_style("chart--a")
        sb = self.get_component_rich_style("chart--b")
        axis = self.get_component_rich_style("chart--axis")
        peak = max((x + y for x, y in zip(ra, rb)), default=0)
        head = Text(no_wrap=True, overflow="ellipsis")
        unit = self.unit if k == 1 else f"{k} {self.unit}s"
        head.append(f"{self.title} per {unit}" if unit else self.title, title_style)
        head.append("  ")
        head.append("■", Style(color=sa.color))
        head.append(f" {self.label_a} ", axis)
        head.append("■", Style(color=sb.color))
        head.append(f" {self.label_b}", axis)
        head.append(f"  max {compact(peak)}", axis)
        body = StackedColumns(ra, rb, height - 2, Style(color=sa.color), Style(color=sb.color), Style())
        return Group(head, body, self._axis(width, len(ra), k, axis))

    def _axis(self, width: int, n: int, k: int, style: Style) -> Text:
        """First, middle and last bucket times under their columns."""
        if not self.starts or not n:
            return Text("no data", style)
        widths, lead = column_widths(width, n)
        starts_at = [lead + sum(widths[:i]) for i in range(n)]
        left = self.fmt_x(self.starts[0])
        right = self.fmt_x(self.starts[min((n - 1) * k, len(self.starts) - 1)])
        if width < len(left) + len(right) + 2:
            return Text(left[:width], style)
        line = [" "] * width
        start = min(lead, width - len(left))
        line[start:start + len(left)] = left
        end = min(width, starts_at[-1] + len(right))
        line[end - len(right):end] = right
        if width - lead >= len(left) + len(right) + 20:
            mid_col = n // 2
            mid = self.fmt_x(self.starts[mid_col * k])
            at = max(start + len(left) + 2, min(starts_at[mid_col], end - len(right) - len(mid) - 2))
            line[at:at + len(mid)] = mid
        return Text("".join(line), style, no_wrap=True)


class ModelBars(Widget):
    """Horizontal bars of total tokens by model, with cost beside each."""

    COMPONENT_CLASSES = {"bars--bar", "bars--label", "bars--dim", "chart--title"}
    items: reactive[tuple] = reactive((), layout=False)

    def render(self):
        width = max(20, self.size.width)
        height = max(1, self.size.height)
        title = self.get_component_rich_style("chart--title")
        bar_style = self.get_component_rich_style("bars--bar")
        label = self.get_component_rich_style("bars--label")
        dim = self.get_component_rich_style("bars--dim")
        lines = [Text("Tokens and cost by model", title, no_wrap=True)]
        items = list(self.items)
        if not items:
            lines.append(Text("no requests in this period", dim))
            return Text("\n").join(lines)
        shown = items[: height - 1]
        if len(items) > len(shown) and shown:
            shown = shown[:-1]
        name_w = min(24, max(len(m) for m, *_ in shown) + 1, width // 3)
        nums = [(compact(t), c) for _, t, c, _ in shown]
        tok_w = max(len(n) for n, _ in nums)
        cost_w = max(len(c) for _, c in nums)
        bar_w = max(4, width - name_w - tok_w - cost_w - 3)
        top = max(t for _, t, _, _ in shown) or 1
        for (model, tokens, cost, _), (tok_text, cost_text) in zip(shown, nums):
            eighths = round(tokens / top * bar_w * 8)
            if tokens and not eighths:
                eighths = 1
            full, part = divmod(eighths, 8)
            bar = "█" * full + (H_BLOCKS[part] if part else "")
            line = Text(no_wrap=True, overflow="ellipsis")
            name = model if len(model) <= name_w - 1 else model[: name_w - 2] + "…"
            line.append(name.ljust(name_w), label)
            line.append(bar.ljust(bar_w), Style(color=bar_style.color))
            line.append(" " + tok_text.rjust(tok_w), label)
            line.append(" " + cost_text.rjust(cost_w), dim)
            lines.append(line)
        if len(items) > len(shown):
            lines.append(Text(f"+ {len(items) - len(shown)} more", dim))
        return Text("\n", no_wrap=True).join(lines)
