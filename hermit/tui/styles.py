"""Where the .tcss files live: the packaged copy (hermit/tui_styles) or the repo's tui_styles/."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1] / "tui_styles"
_REPO = Path(__file__).resolve().parents[2] / "tui_styles"

STYLES_DIR = _PACKAGE if (_PACKAGE / "base.tcss").is_file() else _REPO


def css(*names: str) -> list[Path]:
    return [STYLES_DIR / name for name in names]
