#!/usr/bin/env python3
"""Cost of the TUI: proxy throughput at concurrency 64, `hermit --headless serve` vs `hermit tui` on the Live panel.

One run starts the fake upstream (``python -m hermit.sim.upstream``) and then, alternating, the headless
server and the TUI (a real terminal: a tmux pane of 120x40 showing the Live panel; ``--mode headless``
uses Textual's headless driver instead), each on a fresh SQLite ledger, and drives each with wrk
(c=64, non-streaming chat POSTs). It prints requests/s of every run, the medians, the ratio
TUI/headless (target: >= 0.85), CPU seconds per 1000 requests, and checks that every answered
request is a ledger row. Only processes and tmux sessions this script started are stopped, by PID/name.

    python bench/bench_tui.py                 # 2 rounds of 10 s each
    python bench/bench_tui.py --duration 5 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Say hello in five words."}]})
LUA = """
wrk.method = "POST"
wrk.body = [==[%s]==]
wrk.headers["Content-Type"] = "application/json"
""" % BODY
TARGET = 0.85


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def hermit_cmd() -> list[str]:
    local = Path(sys.executable).parent / "hermit"
    return [str(local)] if local.is_file() else [sys.executable, "-m", "hermit"]


def wait_health(port: int, timeout: float = 30.0) -> bool:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run_wrk(port: int, conc: int, seconds: float, script: Path) -> dict:
    threads = 1 if (os.cpu_count() or 1) <= 2 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conc}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script),
         f"http://{HOST}:{port}/v1/chat/completions"],
        capture_output=True, text=True, timeout=seconds + 60,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if not rps or not total:
        raise RuntimeError(f"wrk gave no result:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def ledger_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]


class Variant:
    """One Hermit to measure: started, driven, stopped; only what it started is stopped."""

    def __init__(self, kind: str, mode: str, tmp: Path, up_port: int, index: int) -> None:
        self.kind, self.mode = kind, mode
        self.port = free_port()
        self.db = tmp / f"{kind}-{index}.db"
        self.session = f"hermit-bench-{os.getpid()}-{index}"
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HERMIT_")}
        self.env.update(
            HERMIT_DATABASE_URL=f"sqlite:///{self.db}",
            HERMIT_DEFAULT_PROVIDER="openai-compatible",
            HERMIT_DEFAULT_BASE_URL=f"http://{HOST}:{up_port}/v1",
            HERMIT_DEFAULT_MODEL="m",
            HERMIT_DEFAULT_API_KEY="sk-bench",
            HERMIT_CONFIG_DIR=str(tmp / "config"),
            HERMIT_SECRET_KEY="bench",
            NO_PROXY="127.0.0.1,localhost",
        )
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            self.env.pop(k, None)

    def start(self) -> None:
        hermit = hermit_cmd()
        if self.kind == "headless":
            cmd = [*hermit, "--headless", "serve", "--host", HOST, "--port", str(self.port), "--log-level", "warning"]
            self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            self.pid = self.proc.pid
        elif self.mode == "tmux":
            exports = " ".join(f"{k}={shlex_quote(v)}" for k, v in self.env.items() if k.startswith(("HERMIT_", "NO_")))
            inner = f"exec env {exports} {' '.join(map(shlex_quote, hermit))} tui --port {self.port}"
            subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", "120", "-y", "40", inner],
                           check=True)
            pane = subprocess.run(["tmux", "list-panes", "-t", self.session, "-F", "#{pane_pid}"],
                                  capture_output=True, text=True, check=True).stdout.split()
            self.pid = int(pane[0])
        else:  # Textual's headless driver, same app and panel
            code = ("import argparse,sys; from hermit.cli.tui import prepare, settings_from, _log_to_file;"
                    "from hermit.tui.app import HermitApp;"
                    f"a=argparse.Namespace(host='{HOST}', port={self.port}, no_server=False, database_url=None);"
                    "s=settings_from(a); _log_to_file(s.env); sv, srv, pb = prepare(a, s);"
                    "app=HermitApp(sv, srv, settings=s); import signal;"
                    "app.run(headless=True, size=(120, 40)); sv.close()")
            self.proc = subprocess.Popen([sys.executable, "-c", code], env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.pid = self.proc.pid
        if not wait_health(self.port):
            self.stop()
            raise RuntimeError(f"{self.kind} Hermit did not answer /health on port {self.port}")

    def screen(self) -> str:
        if self.kind == "tui" and self.mode == "tmux":
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], capture_output=True,
                                  text=True).stdout
        return ""

    def stop(self) -> None:
        if self.kind == "tui" and self.mode == "tmux":
            subprocess.run(["tmux", "send-keys", "-t", self.session, "q"], capture_output=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.pid and Path(f"/proc/{self.pid}").exists():
                time.sleep(0.1)
            subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)
            return
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM if self.kind == "headless" else signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def shlex_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def measure(variant: Variant, args, script: Path) -> dict:
    variant.start()
    try:
        warm = run_wrk(variant.port, args.concurrency, 2, script)  # warm-up: connections, caches
        cpu0 = cpu_seconds(variant.pid) if variant.pid else None
        result = run_wrk(variant.port, args.concurrency, args.duration, script)
        cpu1 = cpu_seconds(variant.pid) if variant.pid else None
        screen = variant.screen()
    finally:
        variant.stop()
    result["cpu_per_1k"] = (cpu1 - cpu0) / result["requests"] * 1000 if cpu0 is not None and cpu1 and result[
        "requests"] else None
    result["ledger_rows"] = ledger_rows(variant.db)
    result["answered"] = warm["requests"] + result["requests"]  # wrk counts answers; rows >= that
    result["live_panel_shown"] = ("following newest" in screen) if screen else None
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load per run (default 10)")
    p.add_argument("--rounds", type=int, default=2, help="headless/TUI pairs, alternating (default 2)")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--mode", choices=("tmux", "headless"), default="tmux" if shutil.which("tmux") else "headless",
                   help="how the TUI runs: in a real 120x40 tmux pane (default) or Textual's headless driver")
    args = p.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="hermit-bench-tui-"))
    script = tmp / "post.lua"
    script.write_text(LUA)
    up_port = free_port()
    up = subprocess.Popen([sys.executable, "-m", "hermit.sim.upstream", "--port", str(up_port), "--no-record"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results: dict[str, list[dict]] = {"headless": [], "tui": []}
    try:
        time.sleep(0.5)
        print(f"hermit TUI bench: wrk c={args.concurrency}, {args.duration:g} s per run, {args.rounds} round(s), "
              f"TUI in {'a 120x40 tmux pane' if args.mode == 'tmux' else 'Textual headless mode'} on the Live panel, "
              f"{os.cpu_count()} CPUs", flush=True)
        order = []
        for r in range(args.rounds):
            order += [("headless", "tui") if r % 2 == 0 else ("tui", "headless")][0]
        for i, kind in enumerate(order):
            res = measure(Variant(kind, args.mode, tmp, up_port, i), args, script)
            results[kind].append(res)
            cpu = f"{res['cpu_per_1k']:.2f} CPU-s/1k req" if res["cpu_per_1k"] is not None else "cpu n/a"
            shown = "" if res["live_panel_shown"] is None else f", Live panel on screen: {res['live_panel_shown']}"
            complete = "complete" if res["ledger_rows"] >= res["answered"] else "ROWS MISSING"
            print(f"  {kind:8s} {res['rps']:8.0f} req/s  {res['requests']} requests, {res['non2xx']} non-2xx, "
                  f"{res['socket_errors']} socket errors, {cpu}, ledger {res['ledger_rows']} rows for "
                  f"{res['answered']} answers incl. warm-up ({complete}){shown}", flush=True)
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGTERM)
            up.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    headless = statistics.median(r["rps"] for r in results["headless"])
    tui = statistics.median(r["rps"] for r in results["tui"])
    ratio = tui / headless if headless else 0.0
    verdict = "PASS" if ratio >= TARGET else "MISS"
    print(f"median headless {headless:.0f} req/s, TUI {tui:.0f} req/s: ratio {ratio:.3f} "
          f"(target >= {TARGET}) {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
