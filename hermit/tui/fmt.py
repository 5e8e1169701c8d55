"""Short, fixed-width renderings of numbers, money, durations and times."""

from __future__ import annotations

UNPRICED = "?"


def compact(n: float | int | None) -> str:
    """1234 -> '1.2k', 5_600_000 -> '5.6M'."""
    if n is None:
        return "-"
    n = float(n)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            value = n / limit
            return f"{value:.1f}{suffix}" if abs(value) < 100 else f"{value:.0f}{suffix}"
    return f"{n:.0f}"


def grouped(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def money(usd: float | None, *, places: int | None = None) -> str:
    """'$0.0123'; None (no known price) -> '?', never '$0'. At most 9 characters below $10,000."""
    if usd is None:
        return UNPRICED
    if usd == 0:
        return "$0.00"  # free on purpose (local models), as in `hermit report`
    if places is not None:
        return f"${usd:,.{places}f}"
    if abs(usd) >= 10:
        return f"${usd:,.2f}"
    if abs(usd) >= 0.01:
        return f"${usd:.4f}"
    if abs(usd) >= 0.00001:
        return f"${usd:.6f}"
    return "<$0.00001"


def duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    return f"{ms / 60_000:.1f}m"


def ago(then_ms: int | None, now_ms: int) -> str:
    if then_ms is None:
        return "never"
    s = max(0, (now_ms - then_ms) // 1000)
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    if s < 86400:
        return f"{s // 3600}h ago"
    return f"{s // 86400}d ago"


def fit(text: str, width: int) -> str:
    """Cut to width with an ellipsis."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
