#!/usr/bin/env python3
"""Write the README's TUI screenshots to screenshots/: the same deterministic states the snapshot tests use.

Every state in hermit.tui.sample.STATES (sample data at a frozen clock, a stand-in server on
127.0.0.1:8800) is rendered at each of its sizes to screenshots/<state>-<W>x<H>.svg, and to .png
as well when `rsvg-convert` is installed (Debian/Ubuntu: apt-get install -y librsvg2-bin).

    python scripts/screenshots.py              # all states
    python scripts/screenshots.py live help    # some of them
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hermit.tui.sample import STATES, state_app  # noqa: E402


async def shoot(name: str, size: tuple[int, int], out: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="hermit-shot-") as folder:
        app, run_before = state_app(name, Path(folder))
        try:
            async with app.run_test(size=size) as pilot:
                await run_before(pilot)
                await pilot.wait_for_scheduled_animations()
                await pilot.pause()
                filename = f"{name}-{size[0]}x{size[1]}.svg"
                app.save_screenshot(filename=filename, path=str(out))
        finally:
            app.services.close()
    return out / filename


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("states", nargs="*", help=f"states to render (default all: {', '.join(STATES)})")
    p.add_argument("--out", default=str(REPO / "screenshots"), help="folder (default screenshots/)")
    args = p.parse_args()
    unknown = [s for s in args.states if s not in STATES]
    if unknown:
        p.error(f"unknown state(s) {', '.join(unknown)}; known: {', '.join(STATES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    converter = shutil.which("rsvg-convert")
    for name in args.states or list(STATES):
        for size in STATES[name][3]:
            svg = asyncio.run(shoot(name, size, out))
            line = f"wrote {svg.relative_to(out.parent) if out.parent in svg.parents else svg}"
            if converter:
                png = svg.with_suffix(".png")
                subprocess.run([converter, "-o", str(png), str(svg)], check=True)
                line += f" and {png.name}"
            print(line, flush=True)
    if not converter:
        print("no PNGs: rsvg-convert is not installed (apt-get install -y librsvg2-bin)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
