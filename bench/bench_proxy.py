#!/usr/bin/env python3
"""Hermit proxy benchmark: direct-to-upstream vs through-Hermit, in one run.

Starts the fake upstream (``python -m hermit.sim.upstream --no-record``) and ``hermit --headless serve`` as
subprocesses on free 127.0.0.1 ports with a fresh temporary SQLite ledger, then measures

1. added latency at concurrency 1 (non-streaming chat), p50/p99, direct vs via Hermit (interleaved);
2. streaming time to first ``data:`` byte at concurrency 1, p50/p99;
3. requests/s, errors and p99 at concurrency 64 (wrk when installed, else a Python load generator process);
4. Hermit CPU time per request and RSS during/after that load, and ledger rows == requests Hermit answered;
5. time from launching ``hermit --headless serve`` to the first /health 200 and the first chat 200;
6. wall time of ``hermit --help`` / ``hermit usage`` and of ``import hermit.cli``.

Everything is printed (never asserted) with the targets and PASS/MISS beside each figure.
Only processes this script started are stopped, by PID, always in ``finally``.

    python bench/bench_proxy.py --quick                 # ~30 s smoke check
    python bench/bench_proxy.py --transport both        # full run, httpx vs aiohttp upstream transport
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
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
from typing import Any

HOST = "127.0.0.1"  # all traffic stays on loopback
MODEL = "m"
CHAT_BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Say hello in five words."}]},
                       separators=(",", ":")).encode()
STREAM_BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Say hello in five words."}],
                          "stream": True}, separators=(",", ":")).encode()
CHAT_PATH = "/v1/chat/completions"
MAX_RESPONSE = 16 * 1024 * 1024
TAIL_SECONDS = 3  # wrk: seconds after the chat phase for answers still in flight (connections then idle)

TARGETS = {
    "added_p50_ms": 1.0,
    "added_ttft_ms": 1.5,
    "rps": 2000.0,
    "rss_mib": 120.0,
    "first_answer_s": 1.0,
    "cli_s": 0.3,
}


# ----------------------------------------------------------------------------- small helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of ``values`` (unsorted is fine)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def clk_tck() -> int:
    return os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all threads) in seconds, from /proc/PID/stat."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    # after the ")" field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12
    return (int(fields[11]) + int(fields[12])) / clk_tck()


def proc_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class CpuWatch:
    """CPU that other people's processes (and the hypervisor: steal) took while a load ran.

    others = all busy CPU time (/proc/stat) - our processes (given PIDs, reaped children such as wrk,
    this script); as a share of all CPUs over the wall time. High values mean the figures are pessimistic.
    """

    def __init__(self, pids: list[int]) -> None:
        import resource

        self._res = resource
        self.pids = pids
        self.t0 = time.monotonic()
        self.stat0 = self._stat()
        self.pid0 = [proc_cpu_seconds(p) or 0.0 for p in pids]
        self.ch0 = self._rus(resource.RUSAGE_CHILDREN)
        self.self0 = self._rus(resource.RUSAGE_SELF)

    def _rus(self, who: int) -> float:
        r = self._res.getrusage(who)
        return r.ru_utime + r.ru_stime

    @staticmethod
    def _stat() -> tuple[float, float] | None:
        try:
            f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except (OSError, ValueError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq = f[:7]
        steal = f[7] if len(f) > 7 else 0
        return (user + nice + system + irq + softirq) / clk_tck(), steal / clk_tck()

    def stop(self) -> dict[str, float | None]:
        wall = time.monotonic() - self.t0
        stat1 = self._stat()
        if self.stat0 is None or stat1 is None or wall <= 0:
            return {"others_share": None, "steal_share": None}
        ours = sum((proc_cpu_seconds(p) or 0.0) - c0 for p, c0 in zip(self.pids, self.pid0))
        ours += self._rus(self._res.RUSAGE_CHILDREN) - self.ch0 + self._rus(self._res.RUSAGE_SELF) - self.self0
        ncpu = os.cpu_count() or 1
        others = max(0.0, stat1[0] - self.stat0[0] - ours)
        return {"others_share": others / (wall * ncpu), "steal_share": (stat1[1] - self.stat0[1]) / (wall * ncpu)}


def hermit_command() -> list[str]:
    """The real console script: prefer the one next to sys.executable (skips pyenv's bash shims)."""
    local = Path(sys.executable).parent / "hermit"
    if local.is_file() and os.access(local, os.X_OK):
        return [str(local)]
    found = shutil.which("hermit")
    if found and "/shims/" not in found:
        return [found]
    if found:
        return [found]  # a shim still works, just slower; reported in the header
    return [sys.executable, "-m", "hermit"]


def base_env(tmp: Path, db: Path, up_port: int, transport: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERMIT_")}
    env.update(
        HERMIT_DATABASE_URL=f"sqlite:///{db}",
        HERMIT_DEFAULT_PROVIDER="openai-compatible",
        HERMIT_DEFAULT_BASE_URL=f"http://{HOST}:{up_port}/v1",
        HERMIT_DEFAULT_MODEL=MODEL,
        HERMIT_DEFAULT_API_KEY="sk-bench",
        HERMIT_CONFIG_DIR=str(tmp / "config"),
        NO_COLOR="1",
    )
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(k, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if transport:
        env["HERMIT_HTTP_TRANSPORT"] = transport
    if PYC_PREFIX:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYC_PREFIX
    return env


# When the environment forbids writing bytecode (PYTHONDONTWRITEBYTECODE), every launch would recompile
# Hermit from source, which an installed Hermit never does; main() points the subprocesses at a
# bench-owned bytecode cache (PYTHONPYCACHEPREFIX in the temp dir) instead, unless --no-pyc-cache.
PYC_PREFIX: str | None = None
WARM_IMPORTS = ("import hermit.cli, hermit.cli.serve, hermit.cli.common, hermit.proxy.server, hermit.wiring, "
                "hermit.sim.upstream, hermit.store.repos, httpx_aiohttp, aiohttp, httpx, quart, hypercorn.asyncio")


def background_cpu(seconds: float = 1.0) -> float | None:
    """Busy share of all CPUs over ``seconds`` (before anything is started: other people's load)."""
    def snap() -> tuple[int, int]:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = f[3] + (f[4] if len(f) > 4 else 0)
        return sum(f), idle
    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
    except (OSError, ValueError, IndexError):
        return None
    return None if t1 == t0 else 1.0 - (i1 - i0) / (t1 - t0)


class Procs:
    """Every subprocess this script starts; stop() signals them by PID only."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], env: dict[str, str] | None, log: Path) -> subprocess.Popen:
        fh = open(log, "wb")
        try:
            p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT)
        finally:
            fh.close()
        self.procs.append(p)
        return p

    @staticmethod
    def stop_one(p: subprocess.Popen, timeout: float = 30.0) -> int | None:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(5)
        return p.returncode

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            try:
                self.stop_one(p, 10.0)
            except Exception:  # noqa: BLE001 - keep cleaning up the others
                pass


def log_tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# ----------------------------------------------------------------------------- lean c=1 client

class HTTPError(Exception):
    pass


class RawClient:
    """Blocking HTTP/1.1 keep-alive client on one socket (TCP_NODELAY), minimal parsing.

    The same code talks to the upstream and to Hermit, so the comparison is fair.
    """

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.host_header = f"{HOST}:{port}".encode()

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf.clear()

    def _connect(self) -> None:
        s = socket.create_connection((HOST, self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.buf.clear()

    def _fill(self) -> None:
        assert self.sock is not None
        data = self.sock.recv(262144)
        if not data:
            raise HTTPError("connection closed by peer")
        self.buf += data
        if len(self.buf) > MAX_RESPONSE:
            raise HTTPError("response too large")

    def build(self, method: str, path: str, body: bytes = b"") -> bytes:
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hermit-bench/1\r\nAccept: */*\r\n" % (
            method.encode(), path.encode(), self.host_header)
        if body or method == "POST":
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        return head + b"\r\n" + body

    def request(self, raw: bytes, mark: bytes | None = None) -> tuple[int, bytes, int | None, int, int]:
        """Send ``raw``; returns (status, body, t_mark_ns or None, t_start_ns, t_end_ns).

        ``mark``: record the time the first byte sequence ``mark`` (e.g. b"data:") of the body arrived.
        """
        if self.sock is None:
            self._connect()
        assert self.sock is not None
        t0 = time.perf_counter_ns()
        t_mark: int | None = None
        try:
            self.sock.sendall(raw)
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end >= 0:
                    break
                if len(self.buf) > 65536:
                    raise HTTPError("header too large")
                self._fill()
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            status = int(head[0].split(" ", 2)[1])
            headers = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            del self.buf[:end + 4]
            if mark is not None and mark in self.buf:
                t_mark = time.perf_counter_ns()
            if headers.get("transfer-encoding", "").lower().endswith("chunked"):
                body = bytearray()
                while True:  # bounded by MAX_RESPONSE and the socket timeout
                    nl = self.buf.find(b"\r\n")
                    while nl < 0:
                        self._fill()
                        if mark is not None and t_mark is None and mark in self.buf:
                            t_mark = time.perf_counter_ns()
                        nl = self.buf.find(b"\r\n")
                    size = int(bytes(self.buf[:nl]).split(b";", 1)[0].strip() or b"0", 16)
                    need = nl + 2 + size + 2
                    while len(self.buf) < need:
                        self._fill()
                        if mark is not None and t_mark is None and mark in self.buf:
                            t_mark = time.perf_counter_ns()
                    if size == 0:
                        # no trailers expected: "0\r\n\r\n"
                        del self.buf[:need]
                        break
                    body += self.buf[nl + 2:nl + 2 + size]
                    del self.buf[:need]
                    if mark is not None and t_mark is None and mark in body:
                        t_mark = time.perf_counter_ns()
                body_b = bytes(body)
            elif "content-length" in headers:
                n = int(headers["content-length"])
                while len(self.buf) < n:
                    self._fill()
                body_b = bytes(self.buf[:n])
                del self.buf[:n]
            else:  # read to close
                try:
                    while True:
                        self._fill()
                except HTTPError:
                    pass
                body_b = bytes(self.buf)
                self.buf.clear()
                self.close()
            t1 = time.perf_counter_ns()
            if headers.get("connection", "").lower() == "close":
                self.close()
            if mark is not None and t_mark is None and mark in body_b:
                t_mark = t1
            return status, body_b, t_mark, t0, t1
        except (OSError, ValueError, IndexError, HTTPError):
            self.close()
            raise


# ----------------------------------------------------------------------------- subprocess startup

def wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.01)
    return False


class Counter:
    """Chat responses Hermit sent (any status) and chat requests whose fate is unknown (socket errors)."""

    def __init__(self) -> None:
        self.answered = 0
        self.unknown = 0


def start_hermit(procs: Procs, env: dict[str, str], port: int, log: Path, counter: Counter,
                 wrap: list[str] | None = None) -> tuple[subprocess.Popen, dict[str, float | None]]:
    """Launch ``hermit --headless serve``; time to the first /health 200 and the first chat 200."""
    cmd = (wrap or hermit_command()) + ["--headless", "serve", "--host", HOST, "--port", str(port),
                                        "--log-level", "warning"]
    t0 = time.perf_counter()
    proc = procs.start(cmd, env, log)
    res: dict[str, float | None] = {"health_s": None, "first_chat_s": None}
    client = RawClient(port, timeout=10.0)
    deadline = t0 + 30.0
    try:
        health = client.build("GET", "/health")
        while time.perf_counter() < deadline and proc.poll() is None:
            try:
                status, _, _, _, _ = client.request(health)
            except (OSError, HTTPError, ValueError, IndexError):
                time.sleep(0.003)
                continue
            if status == 200:
                res["health_s"] = time.perf_counter() - t0
                break
            time.sleep(0.003)
        chat = client.build("POST", CHAT_PATH, CHAT_BODY)
        for _ in range(200):
            if res["health_s"] is None or time.perf_counter() > deadline or proc.poll() is not None:
                break
            try:
                status, _, _, _, _ = client.request(chat)
            except (OSError, HTTPError, ValueError, IndexError):
                counter.unknown += 1
                time.sleep(0.01)
                continue
            counter.answered += 1
            if status == 200:
                res["first_chat_s"] = time.perf_counter() - t0
                break
            time.sleep(0.01)
    finally:
        client.close()
    return proc, res


# ----------------------------------------------------------------------------- c=1 measurements

def c1_interleaved(direct_port: int, via_port: int, body: bytes, n: int, warm: int, counter: Counter,
                   stream: bool, time_limit: float) -> dict[str, Any]:
    """Alternate direct / via requests on two persistent connections; latency (or TTFT when streaming)."""
    d, v = RawClient(direct_port), RawClient(via_port)
    rd, rv = d.build("POST", CHAT_PATH, body), v.build("POST", CHAT_PATH, body)
    mark = b"data:" if stream else None
    out: dict[str, list[float]] = {"direct": [], "via": [], "direct_total": [], "via_total": []}
    errors = {"direct": 0, "via": 0}
    deadline = time.monotonic() + time_limit
    done = 0
    try:
        for i in range(warm + n):
            if time.monotonic() > deadline:
                break
            for name, cl, raw in (("direct", d, rd), ("via", v, rv)):
                try:
                    status, _body, t_mark, t0, t1 = cl.request(raw, mark)
                except (OSError, HTTPError, ValueError, IndexError):
                    errors[name] += 1
                    if name == "via":
                        counter.unknown += 1
                    continue
                if name == "via":
                    counter.answered += 1
                if status != 200 or (stream and t_mark is None):
                    errors[name] += 1
                    continue
                if i >= warm:
                    out[name].append(((t_mark if stream else t1) - t0) / 1e6)
                    out[name + "_total"].append((t1 - t0) / 1e6)
            if i >= warm:
                done += 1
    finally:
        d.close()
        v.close()
    res: dict[str, Any] = {"n": done, "errors": errors}
    for name in ("direct", "via"):
        res[name] = {"p50_ms": pct(out[name], 50), "p99_ms": pct(out[name], 99),
                     "mean_ms": statistics.fmean(out[name]) if out[name] else None,
                     "total_p50_ms": pct(out[name + "_total"], 50)}
    return res


# ----------------------------------------------------------------------------- c=64 load: wrk

WRK_LUA = r"""
-- generated by bench/bench_proxy.py: POST chat for CHAT_SECONDS; after that delay() parks every
-- connection once its last answer is in, so wrk's stop cuts no chat request off (exact ledger count)
-- and wrk's latency percentiles hold chat requests only.
local CHAT_SECONDS = %(chat_seconds)f
local PATH = "%(path)s"
local BODY = [==[%(body)s]==]
local ok_ffi, ffi = pcall(require, "ffi")
local now
if ok_ffi then
  pcall(ffi.cdef, [[ typedef struct { long tv_sec; long tv_nsec; } bench_ts_t;
                      int clock_gettime(int clk_id, bench_ts_t *tp); ]])
  local ts = ffi.new("bench_ts_t")
  now = function() ffi.C.clock_gettime(1, ts); return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9 end
else
  now = os.time
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  chat_sent = 0; chat_ok = 0; chat_err = 0; t0 = -1; t_last = -1
  chat_req = wrk.format("POST", PATH, {["Content-Type"] = "application/json"}, BODY)
end
function request()
  if t0 < 0 then t0 = now() end
  chat_sent = chat_sent + 1
  return chat_req
end
function delay()
  if t0 >= 0 and now() - t0 >= CHAT_SECONDS then return 3600000 end
  return 0
end
function response(status, headers, body)
  t_last = now()
  if status == 200 then chat_ok = chat_ok + 1 else chat_err = chat_err + 1 end
end
function done(summary, latency, requests)
  local sent, ok, err, first, last = 0, 0, 0, -1, -1
  for _, t in ipairs(threads) do
    sent = sent + t:get("chat_sent"); ok = ok + t:get("chat_ok"); err = err + t:get("chat_err")
    local a, b = t:get("t0"), t:get("t_last")
    if a >= 0 and (first < 0 or a < first) then first = a end
    if b > last then last = b end
  end
  local e = summary.errors
  io.write(string.format('BENCHJSON {"chat_sent":%%d,"chat_ok":%%d,"chat_err":%%d,"chat_span_s":%%.6f,' ..
    '"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d}\n',
    sent, ok, err, (first >= 0 and last > first) and (last - first) or 0, summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def wrk_version(wrk: str) -> str:
    try:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=5)
        return (out.stdout + out.stderr).splitlines()[0].split(" [")[0]
    except Exception:  # noqa: BLE001
        return "wrk"


def run_wrk(wrk: str, port: int, conc: int, duration: int, tmp: Path, pid: int | None,
            ours: list[int]) -> dict[str, Any]:
    """wrk for ``duration`` s of chat POSTs, then up to TAIL_SECONDS for the answers still in flight."""
    script = tmp / f"wrk_{port}.lua"
    script.write_text(WRK_LUA % {"chat_seconds": float(duration), "path": CHAT_PATH, "body": CHAT_BODY.decode()})
    threads = 1 if (os.cpu_count() or 1) <= 2 else 2
    cmd = [wrk, f"-t{threads}", f"-c{conc}", f"-d{duration + TAIL_SECONDS}s", "--timeout", "10s",
           "-s", str(script), f"http://{HOST}:{port}/"]
    cpu0 = proc_cpu_seconds(pid) if pid else None
    watch = CpuWatch(ours)
    t_launch = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=duration + TAIL_SECONDS + 30)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(5)
    cpu1 = proc_cpu_seconds(pid) if pid else None
    contention = watch.stop()
    m = re.search(r"^BENCHJSON (\{.*\})$", out, re.M)
    if not m:
        raise RuntimeError(f"wrk gave no result (rc={p.returncode}):\n{out[-2000:]}")
    r = json.loads(m.group(1))
    answered = r["chat_ok"] + r["chat_err"]
    span = r["chat_span_s"] or float(duration)
    sock_err = r["connect"] + r["read"] + r["write"] + r["timeout"]
    return {
        "generator": "wrk",
        "answered": answered,
        "ok": r["chat_ok"],
        "errors": r["chat_err"] + sock_err,
        "socket_errors": sock_err,
        # still in flight when wrk stopped (wrk calls request() once more to verify the script)
        "cut_off": max(0, r["chat_sent"] - 1 - answered - sock_err),
        "rps": answered / span if span > 0 else 0.0,
        "p50_ms": r["p50_us"] / 1000.0,
        "p99_ms": r["p99_us"] / 1000.0,
        "max_ms": r["max_us"] / 1000.0,
        "span_s": span,
        "cpu_s": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
        "cpu_wall_s": time.monotonic() - t_launch,
        "raw": r,
        **contention,
    }


# ----------------------------------------------------------------------------- c=64 load: Python fallback

class _LoadConn(asyncio.Protocol):
    """One keep-alive connection of the Python load generator: one request in flight at a time."""

    def __init__(self, gen: "_LoadGen") -> None:
        self.gen = gen
        self.t: asyncio.Transport | None = None
        self.buf = bytearray()
        self.sent = 0
        self.waiting = False
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.t = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send()

    def send(self) -> None:
        g = self.gen
        if self.t is None:
            return
        if time.perf_counter() >= g.deadline or self.t.is_closing():
            self.t.close()  # graceful end: nothing is in flight on this connection
            return
        self.sent = time.perf_counter_ns()
        self.waiting = True
        self.t.write(g.raw)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            m = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            if m is None:  # the targets always answer with a content-length here
                self.gen.errors += 1
                self.waiting = False
                self.t.close()
                return
            n = end + 4 + int(m.group(1))
            if len(self.buf) < n:
                return
            status = int(head[9:12])
            del self.buf[:n]
            g = self.gen
            self.waiting = False
            g.answered += 1
            if status == 200:
                g.ok += 1
            else:
                g.non200 += 1
            g.lat.append(time.perf_counter_ns() - self.sent)
            g.t_last = time.perf_counter()
            self.send()

    def connection_lost(self, exc) -> None:
        if self.waiting:  # a request was cut off: its fate is unknown
            self.waiting = False
            self.gen.errors += 1
        if not self.lost.done():
            self.lost.set_result(None)


class _LoadGen:
    def __init__(self, port: int, conc: int, duration: float) -> None:
        self.port = port
        self.conc = conc
        self.duration = duration
        self.raw = (b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: hermit-bench-loadgen/1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s") % (
            CHAT_PATH.encode(), HOST.encode(), port, len(CHAT_BODY), CHAT_BODY)
        self.deadline = 0.0
        self.answered = self.ok = self.non200 = self.errors = 0
        self.lat: list[int] = []
        self.t_last = 0.0

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        self.deadline = time.perf_counter() + self.duration
        t0 = time.perf_counter()
        conns = []
        for _ in range(self.conc):
            try:
                _, proto = await loop.create_connection(lambda: _LoadConn(self), HOST, self.port)
                conns.append(proto)
            except OSError:
                self.errors += 1
        # connections close themselves after their last answer past the deadline (bounded wait)
        if conns:
            await asyncio.wait([c.lost for c in conns], timeout=self.duration + 15)
        span = (self.t_last or time.perf_counter()) - t0  # first request to last answer
        for c in conns:
            if c.t is not None and not c.t.is_closing():
                c.t.close()
        lat_ms = [x / 1e6 for x in self.lat]
        return {"generator": "python-asyncio", "answered": self.answered, "ok": self.ok,
                "errors": self.non200 + self.errors, "socket_errors": self.errors,
                "rps": self.answered / span if span > 0 else 0.0, "p50_ms": pct(lat_ms, 50),
                "p99_ms": pct(lat_ms, 99), "max_ms": max(lat_ms) if lat_ms else None, "span_s": span}


def loadgen_worker(spec: str) -> int:
    a = json.loads(spec)
    res = asyncio.run(_LoadGen(a["port"], a["conc"], a["duration"]).run())
    print("BENCHJSON " + json.dumps(res), flush=True)
    return 0


def run_pyload(port: int, conc: int, duration: float, pid: int | None, ours: list[int]) -> dict[str, Any]:
    spec = json.dumps({"port": port, "conc": conc, "duration": duration})
    cpu0 = proc_cpu_seconds(pid) if pid else None
    watch = CpuWatch(ours)
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_loadgen", spec],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=duration + 60)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(5)
    cpu1 = proc_cpu_seconds(pid) if pid else None
    m = re.search(r"^BENCHJSON (\{.*\})$", out, re.M)
    if not m:
        raise RuntimeError(f"load generator gave no result (rc={p.returncode}):\n{out[-2000:]}")
    r = json.loads(m.group(1))
    r["cpu_s"] = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
    r["cpu_wall_s"] = time.monotonic() - t0
    r.update(watch.stop())
    return r


# ----------------------------------------------------------------------------- CLI timings

def time_cmd(cmd: list[str], env: dict[str, str], runs: int, cwd: str) -> tuple[float | None, str]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=60)
        except subprocess.TimeoutExpired:
            return None, "timed out after 60 s"
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            last = (p.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
            return None, f"n/a - exit {p.returncode}: {last[:90]}"
        times.append(dt)
    return statistics.median(times), ""


def _importtime(code: str, env: dict[str, str], cwd: str) -> list[tuple[str, float, int]]:
    try:
        p = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, cwd=cwd,
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return []
    rows = []
    for line in p.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append((m.group(4), int(m.group(2)) / 1000.0, len(m.group(3))))
    return rows


HELP_CODE = "import sys; sys.argv = ['hermit', '--help']; from hermit.cli import main; main()"


def import_profile(env: dict[str, str], cwd: str, top: int = 8) -> list[tuple[str, float]]:
    """-X importtime: the slowest modules (cumulative ms) that `hermit --help` adds to a bare interpreter."""
    base = {name for name, _, _ in _importtime("pass", env, cwd)}
    rows = [(n, ms) for n, ms, depth in _importtime(HELP_CODE, env, cwd)
            if n not in base and n != "hermit.cli" and depth <= 3]
    rows.sort(key=lambda r: -r[1])
    return rows[:top]


def cli_timings(env: dict[str, str], runs: int, cwd: str) -> dict[str, Any]:
    hermit = hermit_command()
    nocache_s = None
    if PYC_PREFIX:  # what this environment gives without a bytecode cache, for reference
        raw = {k: v for k, v in env.items() if k != "PYTHONPYCACHEPREFIX"}
        raw["PYTHONDONTWRITEBYTECODE"] = "1"
        nocache_s, _ = time_cmd(hermit + ["--help"], raw, min(runs, 3), cwd)
    help_s, help_err = time_cmd(hermit + ["--help"], env, runs, cwd)
    usage_s, usage_err = time_cmd(hermit + ["usage"], env, runs, cwd)
    imp_s, imp_err = time_cmd([sys.executable, "-c", "import hermit.cli"], env, runs, cwd)
    base_s, _ = time_cmd([sys.executable, "-c", "pass"], env, runs, cwd)
    return {"help_s": help_s, "help_err": help_err, "usage_s": usage_s, "usage_err": usage_err,
            "import_s": imp_s, "import_err": imp_err, "python_s": base_s,
            "importtime_top": import_profile(env, cwd), "command": " ".join(hermit), "runs": runs,
            "help_nocache_s": nocache_s}


# ----------------------------------------------------------------------------- one Hermit instance

def ledger_rows(db: Path) -> int | None:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute("select count(*) from ledger").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error as exc:
        print(f"  (could not count ledger rows: {exc})", file=sys.stderr)
        return None


def bench_hermit(args, procs: Procs, tmp: Path, up_port: int, up_pid: int, transport: str, loadgen: str,
                 direct_load: dict[str, Any] | None) -> dict[str, Any]:
    tag = transport
    db = tmp / f"hermit-{tag}.db"
    env = base_env(tmp, db, up_port, transport)
    port = free_port()
    counter = Counter()
    log = tmp / f"hermit-{tag}.log"
    wrap = None
    if args.cprofile:
        wrap = [sys.executable, "-m", "cProfile", "-o", f"{args.cprofile}.{tag}", "-m", "hermit"]
    launches = []
    for i in range(args.startup_runs - 1):  # extra launches (own fresh ledgers) for a median start-up time
        xdb = tmp / f"startup-{tag}-{i}.db"
        xproc, xstart = start_hermit(procs, base_env(tmp, xdb, up_port, transport), free_port(),
                                     tmp / f"startup-{tag}-{i}.log", Counter())
        Procs.stop_one(xproc, 30.0)
        launches.append(xstart)
    print(f"[{tag}] starting hermit on {HOST}:{port} (ledger {db.name})", flush=True)
    proc, start = start_hermit(procs, env, port, log, counter, wrap)
    launches.append(start)
    for key in ("health_s", "first_chat_s"):
        vals = [x[key] for x in launches if x[key] is not None]
        start[key + "_all"] = vals
        start[key + "_median"] = statistics.median(vals) if len(vals) == len(launches) else None
    res: dict[str, Any] = {"transport": transport, "port": port, "startup": start, "db": str(db)}
    try:
        if start["first_chat_s"] is None:
            raise RuntimeError(f"hermit did not answer a chat completion; log tail:\n{log_tail(log)}")
        print(f"[{tag}] c=1 non-streaming: {args.requests} requests after {args.warmup} warm-up (interleaved)",
              flush=True)
        watch = CpuWatch([proc.pid, up_pid])
        res["c1"] = c1_interleaved(up_port, port, CHAT_BODY, args.requests, args.warmup, counter, False,
                                   args.c1_time_limit)
        print(f"[{tag}] c=1 streaming TTFT: {args.stream_requests} requests after {args.warmup} warm-up", flush=True)
        res["ttft"] = c1_interleaved(up_port, port, STREAM_BODY, args.stream_requests, args.warmup, counter, True,
                                     args.c1_time_limit)
        res["c1_contention"] = watch.stop()
        print(f"[{tag}] c={args.concurrency} load via hermit for {args.duration} s ({loadgen})", flush=True)
        spy = None
        if args.py_spy:
            spy_out = f"{args.py_spy}.{tag}.txt"
            spy_secs = max(1, int(args.duration - 1))
            spy = procs.start([args.py_spy_bin, "record", "--pid", str(proc.pid), "--duration", str(spy_secs),
                               "--rate", "100", "--gil", "--threads", "--nonblocking", "--format", "raw",
                               "-o", spy_out], None, tmp / f"py-spy-{tag}.log")
            res["py_spy"] = spy_out
        if loadgen == "wrk":
            load = run_wrk(args.wrk, port, args.concurrency, args.duration, tmp, proc.pid, [proc.pid, up_pid])
        else:
            load = run_pyload(port, args.concurrency, args.duration, proc.pid, [proc.pid, up_pid])
        if spy is not None:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                Procs.stop_one(spy, 5)
        counter.answered += load["answered"]
        counter.unknown += load["socket_errors"] + load.get("cut_off", 0)
        res["load"] = load
        time.sleep(0.3)  # let the last batch reach the ledger writer; RSS after the load
        res["rss_mib"] = proc_rss_mib(proc.pid)
        res["cpu_total_s"] = proc_cpu_seconds(proc.pid)
    except Exception as exc:  # noqa: BLE001 - report what was measured, never crash the run
        res["error"] = f"{type(exc).__name__}: {exc}"
        print(f"[{tag}] measurement failed: {res['error']}", flush=True)
    finally:
        rc = Procs.stop_one(proc, 60.0)
    res["exit_code"] = rc
    res["answered"] = counter.answered
    res["unknown"] = counter.unknown
    res["ledger_rows"] = ledger_rows(db)
    if rc not in (0, None):
        print(f"[{tag}] hermit exited with {rc}; log tail:\n{log_tail(log)}", flush=True)
    res["direct_load"] = direct_load
    return res


# ----------------------------------------------------------------------------- report

def f_ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f} ms"


def f_s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f} s"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return ""
    return f"{a / b:.2f}x"


def delta(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return ""
    return f"{a - b:+.3f} ms"


def table(rows: list[tuple[str, ...]],
          head: tuple[str, ...] = ("metric", "direct", "via Hermit", "added", "ratio", "target", "result")) -> str:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    line = lambda r: "  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, rows)])


def report(h: dict[str, Any], conc: int) -> tuple[str, dict[str, str]]:
    rows: list[tuple[str, ...]] = []
    verdicts: dict[str, str] = {}
    c1, tt = h.get("c1") or {}, h.get("ttft") or {}
    d, v = c1.get("direct", {}), c1.get("via", {})
    added50 = None if v.get("p50_ms") is None or d.get("p50_ms") is None else v["p50_ms"] - d["p50_ms"]
    verdicts["added_p50"] = verdict(None if added50 is None else added50 <= TARGETS["added_p50_ms"])
    rows.append((f"c=1 chat latency p50 (n={c1.get('n', 0)})", f_ms(d.get("p50_ms")), f_ms(v.get("p50_ms")),
                 delta(v.get("p50_ms"), d.get("p50_ms")), ratio(v.get("p50_ms"), d.get("p50_ms")),
                 "added <= 1 ms", verdicts["added_p50"]))
    rows.append(("c=1 chat latency p99", f_ms(d.get("p99_ms")), f_ms(v.get("p99_ms")),
                 delta(v.get("p99_ms"), d.get("p99_ms")), ratio(v.get("p99_ms"), d.get("p99_ms")), "", ""))
    e = c1.get("errors", {})
    rows.append(("c=1 chat errors", str(e.get("direct", "n/a")), str(e.get("via", "n/a")), "", "", "0",
                 verdict(None if not e else e.get("via", 1) == 0 and e.get("direct", 1) == 0)))
    d, v = tt.get("direct", {}), tt.get("via", {})
    addt = None if v.get("p50_ms") is None or d.get("p50_ms") is None else v["p50_ms"] - d["p50_ms"]
    verdicts["added_ttft"] = verdict(None if addt is None else addt <= TARGETS["added_ttft_ms"])
    rows.append((f"c=1 stream TTFT p50 (n={tt.get('n', 0)})", f_ms(d.get("p50_ms")), f_ms(v.get("p50_ms")),
                 delta(v.get("p50_ms"), d.get("p50_ms")), ratio(v.get("p50_ms"), d.get("p50_ms")),
                 "added <= 1.5 ms", verdicts["added_ttft"]))
    rows.append(("c=1 stream TTFT p99", f_ms(d.get("p99_ms")), f_ms(v.get("p99_ms")),
                 delta(v.get("p99_ms"), d.get("p99_ms")), ratio(v.get("p99_ms"), d.get("p99_ms")), "", ""))
    rows.append(("c=1 stream whole-response p50", f_ms(d.get("total_p50_ms")), f_ms(v.get("total_p50_ms")),
                 delta(v.get("total_p50_ms"), d.get("total_p50_ms")),
                 ratio(v.get("total_p50_ms"), d.get("total_p50_ms")), "", ""))
    e = tt.get("errors", {})
    rows.append(("c=1 stream errors", str(e.get("direct", "n/a")), str(e.get("via", "n/a")), "", "", "0",
                 verdict(None if not e else e.get("via", 1) == 0 and e.get("direct", 1) == 0)))
    dl, vl = h.get("direct_load") or {}, h.get("load") or {}
    ok_rps = None if not vl else vl["rps"] >= TARGETS["rps"] and vl["errors"] == 0
    verdicts["rps"] = verdict(ok_rps)
    rows.append((f"c={conc} throughput", f"{dl.get('rps', 0):.0f} req/s" if dl else "n/a",
                 f"{vl.get('rps', 0):.0f} req/s" if vl else "n/a", "", ratio(vl.get("rps"), dl.get("rps")),
                 ">= 2000 req/s, 0 err", verdicts["rps"]))
    rows.append((f"c={conc} errors (non-200 + socket)", str(dl.get("errors", "n/a")), str(vl.get("errors", "n/a")),
                 "", "", "0", verdict(None if not vl else vl["errors"] == 0)))
    rows.append((f"c={conc} latency p50", f_ms(dl.get("p50_ms")), f_ms(vl.get("p50_ms")),
                 delta(vl.get("p50_ms"), dl.get("p50_ms")), ratio(vl.get("p50_ms"), dl.get("p50_ms")), "", ""))
    rows.append((f"c={conc} latency p99", f_ms(dl.get("p99_ms")), f_ms(vl.get("p99_ms")),
                 delta(vl.get("p99_ms"), dl.get("p99_ms")), ratio(vl.get("p99_ms"), dl.get("p99_ms")), "", ""))
    cpu = vl.get("cpu_s")
    if cpu is not None and vl.get("answered"):
        per = cpu / vl["answered"] * 1000.0
        util = cpu / max(vl.get("span_s") or vl.get("cpu_wall_s") or 1.0, 1e-9) * 100.0
        rows.append(("Hermit CPU per request (c=64)", "", f"{per:.3f} ms", "", "", "", ""))
        rows.append(("Hermit CPU use during load", "", f"{util:.0f}% of 1 core", "", "", "", ""))
    fmt = lambda x: "n/a" if x is None else f"{x * 100:.0f}%"  # noqa: E731
    cc = h.get("c1_contention") or {}
    if cc.get("others_share") is not None:
        rows.append(("others' CPU during c=1 runs (+steal)", "", f"{fmt(cc['others_share'])} "
                     f"(+{fmt(cc.get('steal_share'))})", "", "", "~0% of all CPUs", "(info)"))
    if vl.get("others_share") is not None:
        rows.append((f"others' CPU during c={conc} (+steal)", f"{fmt(dl.get('others_share'))} "
                     f"(+{fmt(dl.get('steal_share'))})", f"{fmt(vl['others_share'])} (+{fmt(vl.get('steal_share'))})",
                     "", "", "~0% of all CPUs", "(info)"))
    rss = h.get("rss_mib")
    verdicts["rss"] = verdict(None if rss is None else rss < TARGETS["rss_mib"])
    rows.append(("Hermit RSS after load", "", "n/a" if rss is None else f"{rss:.1f} MiB", "", "", "< 120 MiB",
                 verdicts["rss"]))
    lr, ans, unk = h.get("ledger_rows"), h.get("answered"), h.get("unknown", 0)
    verdicts["ledger"] = verdict(None if lr is None else lr == ans and not unk)
    note = ""
    if unk and lr is not None:
        inside = ans <= lr <= ans + unk
        note = f" ({unk} of unknown fate{', rows within range' if inside else ''})"
    rows.append(("ledger rows / chat answered", "", f"{lr} / {ans}{note}", "", "", "equal", verdicts["ledger"]))
    rows.append(("hermit exit code after SIGTERM", "", str(h.get("exit_code")), "", "", "0",
                 verdict(h.get("exit_code") == 0)))
    st = h.get("startup", {})
    n = len(st.get("first_chat_s_all") or []) or 1
    spread = lambda k: ("" if n < 2 else " (" + ", ".join(f"{x:.2f}" for x in st.get(k + "_all", [])) + ")")  # noqa
    rows.append((f"launch -> first /health 200{' median of %d' % n if n > 1 else ''}", "",
                 f_s(st.get("health_s_median", st.get("health_s"))) + spread("health_s"), "", "", "", ""))
    fc = st.get("first_chat_s_median", st.get("first_chat_s"))
    verdicts["first_answer"] = verdict(None if fc is None else fc < TARGETS["first_answer_s"])
    rows.append((f"launch -> first chat 200{' median of %d' % n if n > 1 else ''}", "", f_s(fc) + spread("first_chat_s"),
                 "", "", "< 1 s", verdicts["first_answer"]))
    return table(rows), verdicts


def cli_report(c: dict[str, Any]) -> str:
    rows = []
    notes = []
    for label, key in (("hermit --help", "help"), ("hermit usage", "usage")):
        v = c.get(key + "_s")
        if v is None:
            notes.append(f"  {label}: {c.get(key + '_err')}")
        rows.append((f"{label} (median of {c.get('runs')})", f_s(v), "< 0.3 s",
                     verdict(None if v is None else v < TARGETS["cli_s"])))
    if c.get("help_nocache_s") is not None:
        rows.append(("hermit --help, no .pyc cache (as this env)", f_s(c["help_nocache_s"]), "(info)", ""))
    rows.append(("python -c 'import hermit.cli'", f_s(c.get("import_s")), "", ""))
    rows.append(("python -c 'pass' (interpreter baseline)", f_s(c.get("python_s")), "", ""))
    out = table(rows, ("command", "wall time", "target", "result"))
    if notes:
        out += "\n" + "\n".join(notes)
    if c.get("importtime_top"):
        out += "\n  slowest imports of `hermit --help` beyond a bare interpreter (-X importtime, cumulative): " + ", ".join(
            f"{name} {ms:.0f} ms" for name, ms in c["importtime_top"])
    return out


# ----------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Hermit direct-vs-proxy benchmark (prints, never asserts).")
    p.add_argument("--quick", action="store_true", help="short runs for a smoke check (~30 s)")
    p.add_argument("--requests", type=int, help="c=1 measured requests per side (default 2000; quick 200)")
    p.add_argument("--stream-requests", type=int, help="c=1 streaming requests per side (default = --requests)")
    p.add_argument("--warmup", type=int, help="c=1 warm-up requests per side (default 200; quick 30)")
    p.add_argument("--duration", type=int, help="seconds per c=64 load run (default 10; quick 3)")
    p.add_argument("--concurrency", type=int, default=64, help="connections for the load run (default 64)")
    p.add_argument("--transport", default="aiohttp", choices=("aiohttp", "httpx", "both"),
                   help="HERMIT_HTTP_TRANSPORT for Hermit; 'both' runs the via-Hermit part for each")
    p.add_argument("--loadgen", default="auto", choices=("auto", "wrk", "python"),
                   help="load generator for the c=64 run (auto: wrk if installed)")
    p.add_argument("--cli-runs", type=int, help="runs per CLI timing (median; default 5, quick 3)")
    p.add_argument("--startup-runs", type=int, help="launches of hermit serve per transport for the start-up "
                                                    "time (median; default 3, quick 1)")
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    p.add_argument("--cprofile", metavar="PREFIX",
                   help="run Hermit under cProfile, writing PREFIX.<transport> (slows Hermit: figures are not "
                        "representative) and print its top functions")
    p.add_argument("--py-spy", metavar="PREFIX",
                   help="sample Hermit with py-spy (PATH or $PY_SPY) during the c=64 run, writing "
                        "PREFIX.<transport>.txt, and print its hot spots (costs some throughput)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="wait up to SECONDS for other work to drop below 15%% CPU before starting")
    p.add_argument("--no-pyc-cache", action="store_true",
                   help="keep PYTHONDONTWRITEBYTECODE as given (every launch recompiles Hermit from source)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, ledgers)")
    p.add_argument("--_loadgen", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    q = a.quick
    a.requests = a.requests if a.requests is not None else (200 if q else 2000)
    a.stream_requests = a.stream_requests if a.stream_requests is not None else a.requests
    a.warmup = a.warmup if a.warmup is not None else (30 if q else 200)
    a.duration = a.duration if a.duration is not None else (3 if q else 10)
    a.duration = max(1, a.duration)
    a.cli_runs = a.cli_runs if a.cli_runs is not None else (3 if q else 5)
    a.startup_runs = max(1, min(a.startup_runs if a.startup_runs is not None else (1 if q else 3), 20))
    a.c1_time_limit = 60.0 if q else 300.0  # each c=1 loop stops early past this
    a.concurrency = max(1, min(a.concurrency, 4096))
    return a


def print_cprofile(path: str, top: int = 25) -> None:
    import pstats

    try:
        st = pstats.Stats(path)
    except (OSError, TypeError, EOFError) as exc:
        print(f"(no profile at {path}: {exc})")
        return
    print(f"\ncProfile {path}: top {top} by own time (all code), then Hermit's own functions by cumulative time")
    st.sort_stats("tottime").print_stats(top)
    st.sort_stats("cumulative").print_stats(r"/hermit/(proxy|core|services|store)/", top)


def print_py_spy(path: str, top: int = 25) -> None:
    """Summarise py-spy's collapsed stacks: GIL share per thread, own time per package, Hermit's functions."""
    import collections

    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        print(f"(no py-spy output at {path}: {exc})")
        return
    strip = re.compile(r"/[^ ;()]*/(?:site-packages|python3\.\d+)/")
    total = 0
    threads: collections.Counter = collections.Counter()
    pkg_self: collections.Counter = collections.Counter()
    line_self: collections.Counter = collections.Counter()
    hermit_fn: collections.Counter = collections.Counter()
    for line in lines:
        stack, _, n_s = line.rpartition(" ")
        if not n_s.isdigit():
            continue
        n = int(n_s)
        total += n
        frames = [strip.sub("", f) for f in stack.split(";")]
        threads[re.sub(r"^thread \(\d+\): ", "", frames[0])] += n
        leaf = frames[-1]
        m = re.search(r"\(([^:)]+)", leaf)
        pkg_self[(m.group(1).split("/")[0] if m else leaf).removesuffix(".py")] += n
        line_self[leaf] += n
        seen = set()
        for f in frames:
            if re.search(r"\((?:/\S*/)?hermit/", f):
                key = re.sub(r":\d+\)$", ")", f)
                if key not in seen:
                    seen.add(key)
                    hermit_fn[key] += n
    if not total:
        print(f"(py-spy recorded no samples in {path})")
        return
    share = lambda n: f"{n / total * 100:5.1f}%"  # noqa: E731
    print(f"\npy-spy {path}: {total} samples of the thread holding the GIL (--gil), c=64 load")
    print("  GIL by thread: " + ", ".join(f"{t} {share(n).strip()}" for t, n in threads.most_common(5)))
    print("  own time by package: " + ", ".join(f"{k} {share(n).strip()}" for k, n in pkg_self.most_common(14)))
    print("  top lines by own time:")
    for k, n in line_self.most_common(top):
        print(f"    {share(n)}  {k}")
    print("  Hermit functions by inclusive time (coroutine stacks are partial, so these are lower bounds):")
    for k, n in hermit_fn.most_common(top):
        print(f"    {share(n)}  {k}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._loadgen:
        return loadgen_worker(args._loadgen)
    if args.py_spy:
        args.py_spy_bin = os.environ.get("PY_SPY") or shutil.which("py-spy")
        if not args.py_spy_bin:
            print("--py-spy: py-spy not found (pip install py-spy, or set PY_SPY=/path/to/py-spy); skipping it")
            args.py_spy = None
    args.wrk = shutil.which("wrk")
    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "wrk" if args.wrk else "python"
    if loadgen == "wrk" and not args.wrk:
        print("wrk is not installed (apt-get install -y wrk); using the Python load generator", flush=True)
        loadgen = "python"
    loadgen_label = (f"{wrk_version(args.wrk)} (1 thread, {args.concurrency} connections, Lua POST script)"
                     if loadgen == "wrk" else f"python asyncio raw-socket keep-alive ({args.concurrency} "
                                              "connections, separate process)")
    transports = ["aiohttp", "httpx"] if args.transport == "both" else [args.transport]
    repo = str(Path(__file__).resolve().parents[1])
    tmp = Path(tempfile.mkdtemp(prefix="hermit-bench-"))
    procs = Procs()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "loadgen": loadgen_label, "config": {k: v for k, v in vars(args).items() if not k.startswith("_")},
        "targets": TARGETS, "hermit": {},
    }
    t_start = time.monotonic()
    global PYC_PREFIX
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not args.no_pyc_cache:
        PYC_PREFIX = str(tmp / "pycache")
    bg = background_cpu(1.0)
    quiet_deadline = time.monotonic() + max(0.0, min(args.wait_quiet, 3600.0))
    while bg is not None and bg > 0.15 and time.monotonic() < quiet_deadline:
        print(f"waiting for a quiet machine: {bg * 100:.0f}% of all CPUs busy with other work", flush=True)
        time.sleep(2.0)
        bg = background_cpu(1.0)
    results["machine"]["background_cpu_busy"] = bg
    results["machine"]["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]
    try:
        if PYC_PREFIX:
            subprocess.run([sys.executable, "-c", WARM_IMPORTS], env=base_env(tmp, tmp / "warm.db", 9, None),
                           cwd=repo, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
            subprocess.run(hermit_command() + ["--help"], env=base_env(tmp, tmp / "warm.db", 9, None), cwd=repo,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        up_port = free_port()
        up_log = tmp / "upstream.log"
        up = procs.start([sys.executable, "-m", "hermit.sim.upstream", "--host", HOST, "--port", str(up_port),
                          "--no-record"], base_env(tmp, tmp / "unused.db", up_port, None), up_log)
        if not wait_for_port(up_port, up, 20):
            raise RuntimeError(f"fake upstream did not start; log:\n{log_tail(up_log)}")
        print(f"fake upstream on {HOST}:{up_port}; load generator: {loadgen_label}", flush=True)
        # warm the upstream once (its own caches) and check it answers
        probe = RawClient(up_port)
        try:
            st, _, _, _, _ = probe.request(probe.build("POST", CHAT_PATH, CHAT_BODY))
        finally:
            probe.close()
        if st != 200:
            raise RuntimeError(f"fake upstream answered {st}")

        print(f"direct: c={args.concurrency} load on the upstream for {args.duration} s", flush=True)
        if loadgen == "wrk":
            direct_load = run_wrk(args.wrk, up_port, args.concurrency, args.duration, tmp, up.pid, [up.pid])
        else:
            direct_load = run_pyload(up_port, args.concurrency, args.duration, up.pid, [up.pid])
        results["direct_load"] = direct_load

        for transport in transports:
            results["hermit"][transport] = {"transport": transport}
            results["hermit"][transport] = bench_hermit(args, procs, tmp, up_port, up.pid, transport, loadgen, direct_load)

        print("CLI timings", flush=True)
        first_db = Path(results["hermit"][transports[0]].get("db") or tmp / "cli.db")
        results["cli"] = cli_timings(base_env(tmp, first_db, up_port, None), args.cli_runs, repo)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", flush=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - print what we have
        results["error"] = f"{type(exc).__name__}: {exc}"
        print(f"benchmark failed: {results['error']}", flush=True)
    finally:
        procs.stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")

    # ------------------------------------------------------------------ print
    print()
    print("=" * 100)
    print(f"Hermit proxy benchmark - {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{time.monotonic() - t_start:.0f} s wall")
    load_end = Path("/proc/loadavg").read_text().split()[:3]
    print(f"background CPU busy before start: {'n/a' if bg is None else f'{bg * 100:.0f}%'} of all CPUs; "
          f"loadavg start {' '.join(results['machine']['loadavg_start'])}, end {' '.join(load_end)}"
          + ("  <- other work was running: figures are pessimistic" if bg is not None and bg > 0.15 else ""))
    if PYC_PREFIX:
        print("bytecode: PYTHONDONTWRITEBYTECODE is set here; subprocesses used a bench-owned PYTHONPYCACHEPREFIX "
              "(as an installed Hermit has .pyc files); --no-pyc-cache to measure without")
    print(f"load generator (c={args.concurrency}): {loadgen_label}")
    print(f"c=1 client: blocking raw-socket HTTP/1.1 keep-alive (TCP_NODELAY), direct and via interleaved "
          f"request by request; {args.requests} measured + {args.warmup} warm-up each")
    print(f"hermit command: {' '.join(hermit_command())} --headless serve --log-level warning "
          f"(fresh SQLite ledger per instance)")
    if loadgen == "wrk":
        print(f"wrk: chat POSTs for {args.duration} s, then each connection idles once its last answer is in "
              f"(wrk runs {TAIL_SECONDS} s longer), so no request is cut off; req/s = answers / (last answer - "
              "first request)")
    if args.cprofile:
        print("NOTE: Hermit ran under cProfile - its figures are NOT representative")
    if args.py_spy:
        print("NOTE: py-spy sampled Hermit during the c=64 run - its req/s and CPU figures are somewhat lower")
    summary: dict[str, dict[str, str]] = {}
    if results.get("error"):
        print(f"RUN FAILED: {results['error']} (figures below are partial)")
    for transport in transports:
        h = results["hermit"].get(transport)
        if h is None:
            continue
        print()
        print(f"--- via Hermit, HERMIT_HTTP_TRANSPORT={transport} " + "-" * 40)
        if h.get("error"):
            print(f"measurement failed: {h['error']}")
        text, verdicts = report(h, args.concurrency)
        summary[transport] = verdicts
        print(text)
    if "cli" in results:
        print()
        print(f"--- CLI ({results['cli']['command']}) " + "-" * 40)
        print(cli_report(results["cli"]))
        c = results["cli"]
        for t in transports:
            summary[t]["help"] = verdict(None if c["help_s"] is None else c["help_s"] < TARGETS["cli_s"])
            summary[t]["usage"] = verdict(None if c["usage_s"] is None else c["usage_s"] < TARGETS["cli_s"])
    if len(transports) > 1:
        print()
        print("--- transport comparison (via Hermit) " + "-" * 40)
        cols = []
        for t in transports:
            h = results["hermit"].get(t) or {}
            c1, tt, ld = h.get("c1", {}), h.get("ttft", {}), h.get("load", {})
            add = lambda r: (None if r.get("via", {}).get("p50_ms") is None  # noqa: E731
                             or r.get("direct", {}).get("p50_ms") is None
                             else r["via"]["p50_ms"] - r["direct"]["p50_ms"])
            cpu = (ld.get("cpu_s") / ld["answered"] * 1000.0) if ld.get("cpu_s") and ld.get("answered") else None
            cols.append((t, add(c1), add(tt), ld.get("rps"), ld.get("p99_ms"), cpu, h.get("rss_mib")))
        print(f"{'transport':<10} {'added p50':>11} {'added TTFT':>11} {'req/s':>8} {'c64 p99':>10} "
              f"{'CPU/req':>10} {'RSS':>10}")
        for t, a, b, rps, p99, cpu, rss in cols:
            print(f"{t:<10} {f_ms(a):>11} {f_ms(b):>11} {rps or 0:>8.0f} {f_ms(p99):>10} {f_ms(cpu):>10} "
                  f"{'n/a' if rss is None else f'{rss:.1f} MiB':>10}")
        best_rps = max(cols, key=lambda c: c[3] or 0)
        best_lat = min(cols, key=lambda c: c[1] if c[1] is not None else 1e9)
        print(f"highest throughput: {best_rps[0]}; lowest added c=1 latency: {best_lat[0]}")
    shares = [x.get(k) for h in results["hermit"].values() for x in (h.get("c1_contention") or {}, h.get("load") or {})
              for k in ("others_share",) if x.get(k) is not None]
    if shares and max(shares) > 0.15:
        print(f"\nWARNING: other processes used up to {max(shares) * 100:.0f}% of all CPUs during the measurements; "
              "latency, req/s and start-up figures are pessimistic (CPU per request is the most robust figure). "
              "Re-run on a quiet machine (--wait-quiet) to confirm.")
    print()
    for t, v in summary.items():
        print(f"summary [{t}]: " + ", ".join(f"{k}={x}" for k, x in v.items()))
    results["verdicts"] = summary
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        print(f"results written to {args.json}")
    if args.cprofile:
        for t in transports:
            print_cprofile(f"{args.cprofile}.{t}")
    if args.py_spy:
        for t in transports:
            print_py_spy(f"{args.py_spy}.{t}.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
