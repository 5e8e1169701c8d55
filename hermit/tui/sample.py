"""Deterministic sample data and app: the one source for snapshot tests, screenshots and Pilot tests.

A temporary SQLite file, four profiles, a month of seeded ledger rows ending at a frozen clock,
two requests still in flight, and a stand-in server that opens no socket (always 127.0.0.1:8800).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import shutil
import tempfile
from pathlib import Path

from hermit.core.models import LedgerEntry
from hermit.services import tui_support
from hermit.services.events import RequestProgress, RequestStarted
from hermit.settings import Settings

SAMPLE_NOW = dt.datetime(2025, 6, 3, 14, 30, 0, tzinfo=dt.timezone.utc)
SAMPLE_ROWS = 900

PROFILES = (
    dict(name="openai-main", provider="openai", model="gpt-4o-mini", api_key="sk-proj-sample0000000a1b2",
         default_max_tokens=2048),
    dict(name="openrouter-sonnet", provider="openrouter", model="anthropic/claude-sonnet-4",
         api_key="sk-or-v1-sample000000c3d4", allow_client_model_override=True),
    dict(name="local-ollama", provider="ollama", model="llama3.1:8b"),
    dict(name="deepseek", provider="deepseek", model="deepseek-chat", api_key="sk-sample00000000e5f6"),
)
ACTIVE = "openai-main"

# model, profile index, endpoint, USD per million (input, output), weight
MODELS = (
    ("gpt-4o-mini", 0, "chat", (0.15, 0.60), 40),
    ("gpt-4o", 0, "chat", (2.50, 10.0), 10),
    ("anthropic/claude-sonnet-4", 1, "chat", (3.0, 15.0), 18),
    ("llama3.1:8b", 2, "chat", (0.0, 0.0), 14),
    ("deepseek-chat", 3, "chat", (0.27, 1.10), 10),
    ("text-embedding-3-small", 0, "embeddings", (0.02, 0.0), 8),
)
PROVIDERS = ("openai", "openrouter", "ollama", "deepseek")
ERRORS = (
    (429, "upstream 429: Rate limit reached for requests"),
    (500, "upstream 500: The server had an error while processing your request"),
    (502, "upstream unreachable (api.deepseek.com:443): connection failed"),
    (504, "upstream did not answer within 120 s (openrouter.ai:443)"),
    (400, "upstream 400: This model's maximum context length is 128000 tokens"),
)
CLIENTS = ("openai-python/1.82.0", "curl/8.5.0", "vscode-continue", "langchain")


class StubServer:
    """Looks like a running ProxyServer on 127.0.0.1:8800 but opens no socket."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8800) -> None:
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"
        self.state = "stopped"
        self.started = asyncio.Event()
        self._stop = asyncio.Event()
        self.forwarder = None

    async def run(self) -> None:
        self.state = "running"
        self.started.set()
        await self._stop.wait()
        self.state = "stopped"

    def request_stop(self) -> None:
        self._stop.set()


def sample_entries(now_ms: int, count: int = SAMPLE_ROWS, seed: int = 7, *, models=MODELS,
                   profiles: tuple[str, ...] = tuple(p["name"] for p in PROFILES), providers=PROVIDERS,
                   days: int = 30, recent_hour: bool = True) -> list[LedgerEntry]:
    """`days` of traffic, denser towards `now`, oldest first."""
    rng = random.Random(seed)
    weights = [m[4] for m in models]
    out = []
    for i in range(count):
        # a third in the last hour, a third in the last day, the rest over `days`
        spans = (3_600_000, 86_400_000, days * 86_400_000) if recent_hour else (86_400_000, days * 86_400_000)
        band = i % len(spans)
        skew = 1.6 if spans[band] > 3_600_000 and recent_hour else 1.0
        created = now_ms - int(rng.random() ** skew * spans[band]) - 5_000
        model, profile_i, endpoint, (p_in, p_out), _ = rng.choices(models, weights)[0]
        stream = endpoint == "chat" and rng.random() < 0.55
        status, error = 200, None
        if rng.random() < 0.07:
            status, error = rng.choice(ERRORS)
        prompt = rng.randint(8, 60) if endpoint == "embeddings" else int(rng.lognormvariate(6.2, 0.9))
        completion = 0 if endpoint == "embeddings" or status >= 400 else int(rng.lognormvariate(5.3, 0.8))
        prompt = prompt if status < 400 else 0
        latency = rng.uniform(40, 200) if endpoint == "embeddings" else rng.uniform(250, 2500) + completion * 4
        cost = round(prompt / 1e6 * p_in + completion / 1e6 * p_out, 9)
        out.append(LedgerEntry(
            request_id=f"sample-{i:05d}", created_at=created, provider=providers[profile_i],
            upstream_model=model, endpoint=endpoint, stream=stream, status_code=status,
            profile_name=profiles[profile_i], client_model=model, prompt_tokens=prompt,
            completion_tokens=completion, total_tokens=prompt + completion,
            cached_tokens=(prompt // 4) if model.startswith("gpt") and prompt > 400 else None,
            cost_usd=cost, latency_ms=round(latency, 1),
            ttft_ms=round(latency * 0.2, 1) if stream else None, overhead_ms=0.6,
            usage_source="upstream" if status < 400 else "none", client=rng.choice(CLIENTS), error=error,
        ))
    out.sort(key=lambda e: e.created_at)
    return out


def sample_settings(folder: Path) -> Settings:
    env = {
        "HERMIT_DATABASE_URL": f"sqlite:///{folder / 'sample.db'}",
        "HERMIT_SECRET_KEY": "sample-secret-key-for-screenshots-only",
        "HERMIT_CONFIG_DIR": str(folder / "config"),
    }
    return Settings.from_env(env)


def build_sample_services(folder: Path, now_ms: int | None = None, *, profiles=PROFILES, active: str | None = ACTIVE,
                          rows: int = SAMPLE_ROWS):
    """Services on a fresh SQLite file in `folder`, seeded with profiles and `rows` ledger rows.

    The first call with given arguments seeds a template file; later calls copy it (tests are faster).
    """
    now_ms = now_ms if now_ms is not None else int(SAMPLE_NOW.timestamp() * 1000)
    key = repr((now_ms, profiles, active, rows))
    template = _TEMPLATES.get(key)
    if template is None or not template.is_file():
        where = Path(tempfile.mkdtemp(prefix="hermit-sample-"))
        _seed(tui_support.open_services(sample_settings(where), bootstrap=False), now_ms, profiles, active, rows).close()
        template = _TEMPLATES[key] = where / "sample.db"
    shutil.copyfile(template, folder / "sample.db")
    return tui_support.open_services(sample_settings(folder), bootstrap=False)


_TEMPLATES: dict[str, Path] = {}


def _seed(services, now_ms: int, profiles, active: str | None, rows: int):
    ids = {}
    for fields in profiles:
        ids[fields["name"]] = services.profiles.add(fields).id
    if active:
        services.profiles.activate(active, "cli")
    if rows:
        names = tuple(p["name"] for p in profiles)
        entries = sample_entries(now_ms, rows, profiles=(names * 4)[:4])
        for e in entries:
            e.profile_id = ids.get(e.profile_name)
        tui_support.insert_entries(entries)
    return services


def add_in_flight(app, now_ms: int) -> None:
    """Two requests still running: a stream with tokens so far and a plain chat."""
    feed = app.feed
    feed.receive(RequestStarted("live-stream-1", now_ms - 1800, "chat", True, "openai", "gpt-4o-mini",
                                "openai-main", "openai-python/1.82.0"))
    feed.receive(RequestProgress("live-stream-1", 48))
    feed.receive(RequestStarted("live-chat-2", now_ms - 600, "chat", False, "openai", "gpt-4o-mini",
                                "openai-main", "curl/8.5.0"))


def make_sample_app(folder: Path, *, panel: str = "live", in_flight: bool = True, tz: str = "UTC", server=None,
                    problem: tuple[str, str] | None = None, **seed):
    """The HermitApp over sample data at SAMPLE_NOW, with a stub server: fully deterministic."""
    from hermit.tui.app import HermitApp
    from hermit.tui.clock import FrozenClock

    services = build_sample_services(folder, **seed)
    clock = FrozenClock(SAMPLE_NOW, tz)
    app = HermitApp(services, server or StubServer(), clock=clock, cursor_blink=False, initial_panel=panel,
                    problem=problem)
    if in_flight:
        add_in_flight(app, clock.now_ms())
    return app


async def settle(pilot) -> None:
    """Wait until the first load is applied and every pending redraw is done."""
    app = pilot.app
    await asyncio.wait_for(app.ready.wait(), 10)
    for _ in range(50):
        busy = [w for w in app.workers if w.group in ("initial", "analytics", "profiles", "profile-op")
                and not w.is_finished]
        if not busy:
            break
        await asyncio.sleep(0.02)
    app._tick()
    await pilot.pause()
    await pilot.pause()


# -- the states shown by the snapshot tests and by scripts/screenshots.py ------------------------

PORT_TAKEN = (
    "Hermit cannot start the proxy",
    "cannot listen on 127.0.0.1:8800: the port is already in use.\n\nAnother Hermit may already be serving "
    "there: watch its database instead, or quit and start with --port N.",
)


async def _form_with_errors(pilot) -> None:
    await settle(pilot)
    await pilot.press("e")
    form = pilot.app.screen
    form.query_one("#f-base_url").value = "localhost:8000"
    form.query_one("#f-default_max_tokens").value = "lots"
    await pilot.press("ctrl+s")
    await pilot.pause()


def _pressing(*keys: str):
    async def run(pilot) -> None:
        await settle(pilot)
        await pilot.press(*keys)
        await pilot.pause()
        await settle(pilot)

    return run


def _light(then):
    async def run(pilot) -> None:
        pilot.app.theme = "textual-light"
        await then(pilot)

    return run


SIZES = ((80, 24), (120, 40))
# name -> (initial panel, make_sample_app options, run_before, sizes)
STATES = {
    "profiles": ("profiles", {}, settle, SIZES),
    "live": ("live", {}, settle, SIZES),
    "analytics": ("analytics", {}, settle, SIZES),
    "analytics-week": ("analytics", {}, _pressing("3"), ((120, 40),)),
    "live-errors": ("live", {}, _pressing("s", "s"), ((120, 40),)),
    "request-detail": ("live", {}, _pressing("down", "down", "enter"), ((80, 24),)),
    "help": ("live", {}, _pressing("question_mark"), ((80, 24),)),
    "profile-form-errors": ("profiles", {}, _form_with_errors, ((80, 24),)),
    "port-taken": ("live", {"problem": PORT_TAKEN}, settle, ((80, 24),)),
    "live-light": ("live", {}, _light(settle), ((120, 40),)),
    "analytics-light": ("analytics", {}, _light(settle), ((120, 40),)),
}


def state_app(name: str, folder: Path):
    """A fresh app for one named state, and the coroutine that brings it there."""
    panel, options, run_before, _ = STATES[name]
    return make_sample_app(folder, panel=panel, **options), run_before
