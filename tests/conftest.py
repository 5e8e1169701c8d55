"""Shared fixtures: a real fake upstream on loopback, real SQLite files, Hermit in-process or as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from hermit.sim.upstream import FakeUpstreamThread

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("HERMIT_FIXTURES_DIR") or REPO.parent / "shared" / "fixtures" / "streams")
HERMIT = [sys.executable, "-m", "hermit"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstreamThread]:
    """One fake OpenAI-compatible upstream for the whole run (scenarios are chosen per URL)."""
    with FakeUpstreamThread(fixtures_dir=FIXTURES) as up:
        yield up


@pytest.fixture
def base_env(tmp_path: Path, upstream: FakeUpstreamThread) -> dict[str, str]:
    """An environment for Hermit: a fresh SQLite file and a bootstrap profile aimed at the fake upstream."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("HERMIT_") and k not in ("GITHUB_OAUTH_CLIENT_ID",)
    }
    env.update(
        HERMIT_DATABASE_URL=f"sqlite:///{tmp_path / 'hermit.db'}",
        HERMIT_DEFAULT_PROVIDER="openai-compatible",
        HERMIT_DEFAULT_BASE_URL=upstream.base_url,
        HERMIT_DEFAULT_MODEL="fake-model-a",
        HERMIT_DEFAULT_API_KEY="sk-test-upstream-key-0001",
        HERMIT_CONFIG_DIR=str(tmp_path / "config"),
        HERMIT_REQUEST_TIMEOUT_SECONDS="5",
        HERMIT_PROBE_TIMEOUT_SECONDS="3",
        NO_COLOR="1",
    )
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*HERMIT, *args], env=env, capture_output=True, text=True, timeout=timeout,
        input=input, stdin=None if input is not None else subprocess.DEVNULL,
    )


@pytest.fixture
def cli(base_env):
    """Run `hermit ARGS...` as a user would; returns the CompletedProcess."""

    def _run(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
        return run_cli({**base_env, **(env or {})}, *args, **kw)

    return _run


def cli_json(result: subprocess.CompletedProcess) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@dataclass
class RunningServer:
    url: str
    port: int
    services: Any
    server: Any
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def flush(self) -> None:
        assert self.services.writer.flush(10)

    def rows(self) -> list[dict]:
        """Ledger rows (oldest first) after the writer has committed everything queued."""
        from hermit.store.repos import recent_ledger

        self.flush()
        return [e.to_json() for e in reversed(recent_ledger(100000))]

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.request_stop)
            self.thread.join(20)
        self.services.close()


def start_server(env: dict[str, str], host: str = "127.0.0.1") -> RunningServer:
    """Hermit's real ProxyServer on its own event loop in a thread, on a free loopback port."""
    from hermit.proxy.server import ProxyServer
    from hermit.settings import Settings
    from hermit.wiring import build_services

    services = build_services(Settings.from_env(env))
    ready = threading.Event()
    box: dict[str, Any] = {}

    def runner() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = ProxyServer(services, host, 0)
        box["server"], box["loop"] = server, loop

        async def main() -> None:
            task = loop.create_task(server.run())
            await server.started.wait()
            ready.set()
            await task

        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    assert ready.wait(15), "server did not start"
    if "error" in box:
        raise box["error"]
    server = box["server"]
    return RunningServer(server.url, server.port, services, server, box["loop"], thread)


@pytest.fixture
def hermit(base_env) -> Iterator[RunningServer]:
    """A running Hermit (in-process) with the bootstrap profile aimed at the fake upstream."""
    srv = start_server(base_env)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def make_server(base_env):
    started: list[RunningServer] = []

    def _make(**env_overrides: str) -> RunningServer:
        srv = start_server({**base_env, **env_overrides})
        started.append(srv)
        return srv

    yield _make
    for srv in started:
        srv.stop()


class ServeProcess:
    """`hermit --headless serve` as a subprocess, the way an operator runs it."""

    def __init__(self, env: dict[str, str], *extra: str, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*HERMIT, "--headless", "serve", "--port", str(self.port), *extra],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"hermit serve exited {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                if httpx.get(self.url + "/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError("hermit serve did not answer /health within 20 s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out, err


@pytest.fixture
def serve_process(base_env):
    procs: list[ServeProcess] = []

    def _start(*extra: str, env: dict[str, str] | None = None) -> ServeProcess:
        proc = ServeProcess({**base_env, **(env or {})}, *extra)
        procs.append(proc)
        return proc

    yield _start
    for proc in procs:
        proc.stop()


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Poll `predicate` until it returns something truthy (bounded); returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


async def until(pilot, predicate, timeout: float = 10.0, what: str = "condition"):
    """In a Textual Pilot test: pause until `predicate` returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.03)
