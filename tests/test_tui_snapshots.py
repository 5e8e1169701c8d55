"""Snapshots of every panel at 80x24 and 120x40, and of the dialogs, from deterministic sample data.

The same states (hermit.tui.sample.STATES) feed scripts/screenshots.py, so the README's pictures
are these snapshots. Update with `pytest tests/test_tui_snapshots.py --snapshot-update` after
looking at the report.
"""

from __future__ import annotations

import pytest

from hermit.tui.sample import STATES, state_app

CASES = [
    pytest.param(name, size, id=f"{name}-{size[0]}x{size[1]}")
    for name, (_, _, _, sizes) in STATES.items()
    for size in sizes
]


@pytest.mark.parametrize(("name", "size"), CASES)
def test_snapshot(snap_compare, tmp_path, name, size):
    app, run_before = state_app(name, tmp_path)
    try:
        assert snap_compare(app, terminal_size=size, run_before=run_before)
    finally:
        app.services.close()
