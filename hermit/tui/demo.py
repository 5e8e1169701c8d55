"""`hermit demo`: a simulated upstream on loopback, demo profiles, a week of history, live client traffic."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from typing import Any

import httpx

from hermit.sim import upstream as sim
from hermit.tui.sample import sample_entries

# client model -> (stream scenario, non-stream scenario); every Nth request of a model fails as given
SCENARIOS: dict[str, tuple[str, str]] = {
    "gpt-4o-mini": ("slowstream-15+chunks-24", "chunks-24"),
    "gpt-4o": ("slowstream-30+chunks-50", "chunks-50"),
    "claude-sonnet-4": ("slowstream-40+chunks-64", "chunks-64"),
}
FAILURES: dict[str, tuple[int, str]] = {"gpt-4o": (9, "error-429"), "claude-sonnet-4": (13, "error-500")}
FLAKY_EVERY = 3  # the demo-flaky profile's upstream answers 503 to every third request

DEMO_MODELS = (  # for the seeded history: model, profile index, endpoint, USD per million, weight
    ("gpt-4o-mini", 0, "chat", (0.15, 0.60), 40),
    ("gpt-4o", 0, "chat", (2.50, 10.0), 14),
    ("claude-sonnet-4", 0, "chat", (3.0, 15.0), 14),
    ("llama-3.1-8b", 1, "chat", (0.0, 0.0), 12),
    ("text-embedding-3-small", 0, "embeddings", (0.02, 0.0), 10),
    ("gpt-4o-mini", 2, "chat", (0.15, 0.60), 8),
)


def _is_probe(body: bytes) -> bool:
    return b'"content":"ping"' in body.replace(b" ", b"")


class DemoUpstream(sim.FakeUpstreamThread):
    """The fake OpenAI-compatible upstream on its own loop and thread, with demo scenarios."""

    def __init__(self) -> None:
        self.counts: dict[str, itertools.count] = {}
        self.flaky = itertools.count()
        super().__init__(record=False)

    def rewrite_target(self, method: str, target: str, body: bytes) -> str:
        """Pick the scenario from a friendly model name (gpt-4o, ...) instead of a fake-* one."""
        if target.startswith("/flaky/"):
            target = target[len("/flaky"):]
            if not _is_probe(body) and next(self.flaky) % FLAKY_EVERY == FLAKY_EVERY - 1:
                target = "/s/error-503" + target
        elif target.startswith("/v1/") and body:
            spec = self.scenario_for(body)
            if spec:
                target = f"/s/{spec}{target}"
        return target

    def scenario_for(self, body: bytes) -> str | None:
        try:
            obj = json.loads(body)
        except ValueError:
            return None
        model = obj.get("model") if isinstance(obj, dict) else None
        if model not in SCENARIOS:
            return None
        n = next(self.counts.setdefault(model, itertools.count()))
        every, failure = FAILURES.get(model, (0, ""))
        if every and n % every == every - 1:
            return failure
        return SCENARIOS[model][0 if obj.get("stream") else 1]

    @property
    def flaky_url(self) -> str:
        return f"http://{self.host}:{self.port}/flaky/v1"


def demo_profiles(up: DemoUpstream) -> list[dict[str, Any]]:
    return [
        dict(name="demo-fast", provider="openai-compatible", base_url=up.base_url, model="gpt-4o-mini",
             api_key="sk-demo-fast-000000000001", allow_client_model_override=True),
        dict(name="demo-slow", provider="openai-compatible", base_url=up.url("slowstream-70+chunks-40"),
             model="llama-3.1-8b", api_key="sk-demo-slow-000000000002"),
        dict(name="demo-flaky", provider="openai-compatible", base_url=up.flaky_url, model="gpt-4o-mini",
             api_key="sk-demo-flaky-00000000003", allow_client_model_override=True),
        dict(name="demo-badkey", provider="openai-compatible", base_url=up.url("error-401"), model="gpt-4o-mini",
             api_key="sk-demo-revoked-000000004"),
    ]


def seed_demo(services, up: DemoUpstream, history_rows: int = 700) -> None:
    """Demo profiles (demo-fast active) and a week of past traffic so the charts have a shape at once."""
    from hermit.services import tui_support

    ids = {}
    for fields in demo_profiles(up):
        ids[fields["name"]] = services.profiles.add(fields).id
    services.profiles.activate("demo-fast", "cli")
    names = ("demo-fast", "demo-slow", "demo-flaky")
    entries = sample_entries(time.time_ns() // 1_000_000 - 60_000, history_rows, seed=11, models=DEMO_MODELS,
                             profiles=names, providers=("openai-compatible",) * 3, days=7, recent_hour=False)
    for e in entries:
        e.profile_id = ids[e.profile_name]
        e.cost_usd = services.price(e) if services.pricing is not None else e.cost_usd
        e.client = "hermit-demo-history"
    tui_support.insert_entries(entries)


class DemoTraffic:
    """Client traffic through the embedded proxy: a few requests a second, bounded concurrency."""

    def __init__(self, rate: float = 4.0, max_in_flight: int = 16, seed: int = 5) -> None:
        self.rate, self.max_in_flight = rate, max_in_flight
        self.rng = random.Random(seed)
        self.sent = 0

    def next_request(self) -> tuple[str, dict[str, Any], dict[str, str]]:
        rng = self.rng
        roll = rng.random()
        headers = {"x-hermit-client": rng.choice(("demo-notebook", "demo-agent", "demo-ide")),
                   "x-hermit-project": "demo"}
        words = " ".join(rng.choice(("tell", "me", "about", "hermit", "crabs", "and", "their", "shells"))
                         for _ in range(rng.randint(6, 60)))
        if roll < 0.14:
            return "/embeddings", {"model": "text-embedding-3-small", "input": words}, headers
        if roll < 0.17:
            return "/chat/completions", {"model": "gpt-4o-mini", "messages": []}, headers  # a client error: 400
        model = rng.choices(("gpt-4o-mini", "gpt-4o", "claude-sonnet-4"), (5, 3, 2))[0]
        body = {"model": model, "messages": [{"role": "user", "content": words}], "stream": rng.random() < 0.6}
        return "/chat/completions", body, headers

    async def _one(self, client: httpx.AsyncClient) -> None:
        path, body, headers = self.next_request()
        with contextlib.suppress(httpx.HTTPError):
            if body.get("stream"):
                async with client.stream("POST", path, json=body, headers=headers) as response:
                    async for _ in response.aiter_bytes():
                        pass
            else:
                await client.post(path, json=body, headers=headers)

    async def run(self, app) -> None:
        """Until cancelled; then the requests already sent get a few seconds to finish."""
        limits = httpx.Limits(max_connections=self.max_in_flight)
        tasks: set[asyncio.Task] = set()
        async with httpx.AsyncClient(base_url=app.server.url + "/v1", timeout=30, trust_env=False,
                                     limits=limits) as client:
            try:
                while True:
                    await asyncio.sleep(self.rng.expovariate(self.rate))
                    if len(tasks) >= self.max_in_flight:
                        continue
                    task = asyncio.create_task(self._one(client))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    self.sent += 1
            finally:
                if tasks:
                    await asyncio.wait(set(tasks), timeout=4)
                for task in tasks:
                    task.cancel()


def demo_settings(folder):
    from hermit.settings import Settings

    return Settings.from_env({
        "HERMIT_DATABASE_URL": f"sqlite:///{folder / 'demo.db'}",
        "HERMIT_SECRET_KEY": "hermit-demo-throwaway-key",
        "HERMIT_CONFIG_DIR": str(folder),
        "HERMIT_REQUEST_TIMEOUT_SECONDS": "30",
        "HERMIT_PROBE_TIMEOUT_SECONDS": "5",
    })


def build_demo(folder, host: str = "127.0.0.1", port: int = 0, history_rows: int = 700):
    """Everything `hermit demo` runs: (services, bound ProxyServer, settings, upstream, traffic)."""
    from hermit.proxy.server import ProxyServer
    settings = demo_settings(folder)
    upstream = DemoUpstream()
    try:
        from hermit.services import tui_support

        services = tui_support.open_services(settings, bootstrap=False)
        seed_demo(services, upstream, history_rows)
        server = ProxyServer(services, host, port)
        server.bind()
    except BaseException:
        upstream.close()
        raise
    return services, server, settings, upstream, DemoTraffic()
