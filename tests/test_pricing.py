"""Billing: the bundled table, overrides (CLI and HTTP), exact costs at write time, never rewritten."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import openai
import pytest

from conftest import cli_json, wait_for
from db_support import _drop_postgres_template, db_url, store  # noqa: F401 - fixtures
from hermit.core import providers as prov
from hermit.core.models import LedgerEntry
from hermit.services.pricing import BUNDLED_PATH, PriceError, PricingService, PriceTable, load_bundled, model_keys


def entry(
    provider="openai",
    model="gpt-4o",
    prompt=1000,
    completion=500,
    cached=None,
    reasoning=None,
    cache_write=None,
    profile="main",
    upstream_cost=None,
) -> LedgerEntry:
    return LedgerEntry(
        request_id="x",
        created_at=0,
        provider=provider,
        upstream_model=model,
        endpoint="chat",
        stream=False,
        status_code=200,
        profile_name=profile,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cached_tokens=cached,
        reasoning_tokens=reasoning,
        cache_write_tokens=cache_write,
        upstream_cost_usd=upstream_cost,
    )


def nano(usd_per_million: str, tokens: int) -> Decimal:
    """Independent arithmetic: USD per million tokens times tokens, in nano-USD."""
    return Decimal(usd_per_million) * tokens * 1000


def test_bundled_table_is_shipped_complete_and_dated():
    raw = json.loads(BUNDLED_PATH.read_text())
    assert BUNDLED_PATH.parent.name == "data" and BUNDLED_PATH.parent.parent.name == "hermit"  # ships in the wheel
    providers = {p["provider"] for p in raw["prices"]}
    for item in raw["prices"]:
        assert item["as_of"] and item["reference"], item
        assert prov.canonical_name(item["provider"]) == item["provider"]
    assert {"openai", "anthropic", "deepseek", "google-gemini", "xai-grok", "ollama", "vllm", "lmstudio"} <= providers
    prices = load_bundled()
    assert all(p.source == "bundled" and p.input >= 0 and p.output >= 0 for p in prices)


def test_costs_are_exact_with_cached_and_reasoning_rates():
    table = PriceTable(load_bundled(), [])
    # gpt-4o: 2.50 input, 1.25 cached input, 10.00 output (USD per million)
    e = entry(prompt=1200, completion=700, cached=1000, reasoning=300)
    want = nano("2.50", 200) + nano("1.25", 1000) + nano("10.00", 700)
    assert table.cost_nano(e) == want
    # deepseek has a cached rate; claude has cache-write and cache-read rates
    e = entry("deepseek", "deepseek-chat", prompt=10_000, completion=1000, cached=8000)
    assert table.cost_nano(e) == nano("0.28", 2000) + nano("0.028", 8000) + nano("0.42", 1000)
    e = entry("anthropic", "claude-sonnet-4-20250514", prompt=5000, completion=100, cached=3000, cache_write=1500)
    assert table.cost_nano(e) == nano("3", 500) + nano("0.30", 3000) + nano("3.75", 1500) + nano("15", 100)
    # no cached rate known (qwen-plus): cached tokens are billed at the input rate
    e = entry("alibaba-qwen", "qwen-plus", prompt=1000, completion=10, cached=900)
    assert table.cost_nano(e) == nano("0.40", 1000) + nano("1.20", 10)


def test_model_names_match_through_prefixes_suffixes_and_aliases():
    table = PriceTable(load_bundled(), [])
    assert model_keys("openai/GPT-4o-2024-08-06") == [
        "openai/gpt-4o-2024-08-06",
        "gpt-4o-2024-08-06",
        "openai/gpt-4o",
        "gpt-4o",
    ]
    for provider, model in [
        ("openai", "gpt-4o-2024-08-06"),
        ("openrouter", "openai/gpt-4o"),
        ("xai-grok", "grok-4-0709"),
        ("amazon-bedrock", "us.amazon.nova-lite-v1:0"),
        ("anthropic", "claude-3-7-sonnet-latest"),
    ]:
        assert table.lookup(provider, model, None)[0] is not None, (provider, model)
    # a provider's own name wins; only resellers borrow another provider's price for the model name
    assert table.lookup("github-copilot", "gpt-4o", None)[0] is None
    assert table.lookup("openrouter", "anthropic/claude-sonnet-4", None)[1] is True


def test_unknown_local_free_and_provider_reported_costs():
    table = PriceTable(load_bundled(), [])
    assert table.cost_nano(entry("openai-compatible", "my-finetune")) is None  # unknown: null, never 0
    assert table.cost_nano(entry("openai-compatible", "my-finetune", prompt=0, completion=0)) is None
    for provider in ("ollama", "vllm", "lmstudio"):
        assert table.cost_nano(entry(provider, "anything:7b")) == 0  # local: free on purpose
    assert table.cost_nano(entry("openrouter", "meta/llama-3.3-70b:free")) == 0
    # OpenRouter reports what it charged: that beats borrowing another provider's list price
    assert table.cost_nano(entry("openrouter", "openai/gpt-4o", upstream_cost=0.0123)) == 12_300_000
    assert table.cost_nano(entry("openai-compatible", "my-finetune", upstream_cost=0.5)) == 500_000_000


def test_overrides_win_by_profile_then_provider_then_anywhere(store):
    service = PricingService()
    from hermit.store import repos

    repos.create_profile({"name": "main", "provider": "openai"}, codec=repos.PlainCodec())
    service.set("gpt-4o", "1", "2")
    assert service.table.cost_nano(entry(prompt=1_000_000, completion=0)) == 1_000_000_000
    service.set("gpt-4o", "3", "4", provider="openai")
    assert service.table.cost_nano(entry(prompt=1_000_000, completion=0)) == 3_000_000_000
    service.set("GPT-4o", "5", "6", profile="main")
    assert service.table.cost_nano(entry(prompt=1_000_000, completion=0)) == 5_000_000_000
    assert service.table.cost_nano(entry(prompt=1_000_000, completion=0, profile="other")) == 3_000_000_000
    listed = [p.to_json() for p in service.list(model="gpt-4o")]
    assert [p["source"] for p in listed if p["model"].lower() == "gpt-4o"] == ["override"] * 3  # bundled is shadowed
    assert all(p["as_of"] for p in listed)
    removed = service.unset("gpt-4o", profile="main")
    assert removed.profile == "main" and removed.source == "override"
    with pytest.raises(LookupError):
        service.unset("gpt-4o", profile="main")
    with pytest.raises(PriceError):
        service.set("gpt-4o", "-1", "2")
    with pytest.raises(PriceError):
        service.set("gpt-4o", "1", "2", provider="not-a-provider")
    with pytest.raises(LookupError):
        service.set("gpt-4o", "1", "2", profile="nobody")


def test_prices_cli_set_list_unset(cli):
    listed = cli_json(cli("prices", "list", "--json"))["data"]
    assert any(p["model"] == "gpt-4o" and p["source"] == "bundled" and p["input"] == 2.5 for p in listed)
    assert all(
        set(p)
        >= {"id", "model", "provider", "profile", "input", "output", "cached_input", "cache_write", "source", "as_of"}
        for p in listed
    )
    made = cli_json(
        cli(
            "prices",
            "set",
            "fake-model-a",
            "--input",
            "0.075",
            "--output",
            "0.3",
            "--cached-input",
            "0.0375",
            "--provider",
            "openai-compatible",
            "--json",
        )
    )
    assert (made["input"], made["output"], made["cached_input"], made["source"]) == (0.075, 0.3, 0.0375, "override")
    assert made["provider"] == "openai-compatible" and isinstance(made["id"], int)
    human = cli("prices", "list", "--provider", "openai-compatible")
    assert human.returncode == 0 and "fake-model-a" in human.stdout and "$0.075" in human.stdout
    bad = cli("prices", "set", "m", "--input", "cheap", "--output", "1")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    both = cli("prices", "set", "m", "--input", "1", "--output", "1", "--provider", "openai", "--profile", "x")
    assert both.returncode == 2
    assert cli("prices", "unset", "fake-model-a", "--provider", "openai-compatible").returncode == 0
    gone = cli("prices", "unset", "fake-model-a", "--provider", "openai-compatible")
    assert gone.returncode == 1 and "no price override" in gone.stderr


def _expected_nano(row, input_, output, cached_input=None) -> int:
    prompt, cached = row["prompt_tokens"], row["cached_tokens"] or 0
    value = (
        nano(input_, prompt - cached) + nano(cached_input or input_, cached) + nano(output, row["completion_tokens"])
    )
    return int(value.to_integral_value(rounding="ROUND_HALF_UP"))


def test_rows_are_priced_when_written_and_never_rewritten(make_server, cli, upstream):
    cli("prices", "set", "fake-model-a", "--input", "2", "--output", "8", "--cached-input", "0.5")
    srv = make_server(HERMIT_DEFAULT_BASE_URL=upstream.url("cached-4+reasoning-3"))
    client = openai.OpenAI(base_url=srv.v1, api_key="k", max_retries=0)
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "one two three four five six"}])
    (first,) = srv.rows()
    assert first["cached_tokens"] == 4 and first["reasoning_tokens"] == 3
    assert round(first["cost_usd"] * 1e9) == _expected_nano(first, "2", "8", "0.5")

    # another process changes the price; the running proxy picks it up for new rows only
    assert cli("prices", "set", "fake-model-a", "--input", "20", "--output", "80").returncode == 0

    def repriced():
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "again please"}])
        last = srv.rows()[-1]
        return last if round(last["cost_usd"] * 1e9) == _expected_nano(last, "20", "80") else None

    assert wait_for(repriced, timeout=8, interval=0.2)
    rows = srv.rows()
    assert round(rows[0]["cost_usd"] * 1e9) == _expected_nano(first, "2", "8", "0.5")  # history kept
    summary = httpx.get(srv.url + "/analytics/summary").json()
    assert summary["cost_usd"] == sum(round(r["cost_usd"] * 1e9) for r in rows) / 1e9
    assert summary["cached_tokens"] == sum(r["cached_tokens"] for r in rows)
    assert summary["reasoning_tokens"] == sum(r["reasoning_tokens"] for r in rows)


def test_unpriced_and_local_rows_through_the_proxy(make_server, upstream):
    srv = make_server(HERMIT_DEFAULT_BASE_URL=upstream.base_url)
    client = openai.OpenAI(base_url=srv.v1, api_key="k", max_retries=0)
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    srv.flush()
    summary = httpx.get(srv.url + "/analytics/summary").json()
    assert summary["cost_usd"] is None and summary["unpriced_requests"] == 1
    assert summary["unpriced_tokens"] == summary["total_tokens"] > 0
    local = make_server(
        HERMIT_DEFAULT_BASE_URL=upstream.base_url,
        HERMIT_DEFAULT_PROVIDER="ollama",
        HERMIT_DATABASE_URL=srv.services.settings.database_url + "-local",
    )
    openai.OpenAI(base_url=local.v1, api_key="k", max_retries=0).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    (row,) = local.rows()
    assert row["provider"] == "ollama" and row["cost_usd"] == 0.0


def test_prices_over_http(hermit):
    with httpx.Client(base_url=hermit.url, timeout=10) as http:
        listed = http.get("/prices").json()["data"]
        assert any(p["source"] == "bundled" and p["id"] is None for p in listed)
        made = http.post(
            "/prices",
            json={"model": "fake-model-a", "input": 1.5, "output": "6", "cache_write": 1.875, "profile": "default"},
        )
        assert made.status_code == 201, made.text
        body = made.json()
        assert (body["profile"], body["input"], body["output"], body["cache_write"]) == ("default", 1.5, 6.0, 1.875)
        assert hermit.services.pricing.table.lookup("openai-compatible", "fake-model-a", "default")[0] is not None
        for bad, param in [
            ({"model": "x", "input": -1, "output": 1}, "input"),
            ({"model": "", "input": 1, "output": 1}, "model"),
            ({"model": "x", "input": 1, "output": 1, "colour": "red"}, "colour"),
        ]:
            response = http.post("/prices", json=bad)
            assert response.status_code == 400 and response.json()["error"]["param"] == param
        assert http.post("/prices", content=b"{not json").status_code == 400
        assert http.post("/prices", json={"model": "x", "input": 1, "output": 1, "profile": "ghost"}).status_code == 404
        assert http.delete(f"/prices/{body['id']}").status_code == 204
        assert http.delete(f"/prices/{body['id']}").status_code == 404
        assert http.delete("/prices/bundled").status_code == 404
