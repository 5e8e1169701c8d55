"""Storage and configuration: one URL, WAL, schema upgrades in place, bootstrap only once, env overrides."""

from __future__ import annotations

import sqlite3

import pytest

from hermit.core import providers as prov
from hermit.settings import Settings, SettingsError
from hermit.store import db as store_db
from hermit.store.db import StoreError, open_database


def test_sqlite_is_wal_with_busy_timeout(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'a.db'}")
    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert store_db.schema_version(db) == store_db.latest_schema_version()
    db.close()


def test_first_schema_is_upgraded_in_place_without_losing_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    names = store_db.migration_names()
    assert len(names) >= 2, "this test needs at least two schema versions"
    db = open_database(url, target=names[0])
    assert store_db.schema_version(db) == 1
    db.execute_sql(
        "INSERT INTO profiles (name, provider, model, api_key, allow_client_model_override, is_active, created_at, updated_at)"
        " VALUES ('old', 'openai', 'gpt-4o', NULL, 0, 1, 1, 1)"
    )
    db.execute_sql(
        "INSERT INTO ledger (created_at, provider, upstream_model, endpoint, stream, status_code, prompt_tokens,"
        " completion_tokens, total_tokens, latency_ms, usage_source) VALUES (1700000000000, 'openai', 'gpt-4o',"
        " 'chat', 0, 200, 10, 5, 15, 12.5, 'upstream')"
    )
    db.close()
    columns_before = {r[1] for r in sqlite3.connect(tmp_path / "old.db").execute("PRAGMA table_info(ledger)")}
    assert "overhead_ms" not in columns_before

    db = open_database(url)  # the current code opens it
    assert store_db.schema_version(db) == store_db.latest_schema_version()
    from hermit.store import repos

    (entry,) = repos.recent_ledger(10)
    assert (entry.prompt_tokens, entry.completion_tokens, entry.total_tokens) == (10, 5, 15)
    assert entry.overhead_ms is None and entry.cost_usd is None and entry.client is None
    assert repos.find_profile("old").model == "gpt-4o"
    db.close()


def test_unsupported_or_unreachable_database_urls_fail_clearly(tmp_path):
    with pytest.raises(StoreError, match="unsupported database URL"):
        open_database("mysql://x/y")
    with pytest.raises(StoreError, match="does not exist"):
        open_database(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    with pytest.raises(StoreError, match="cannot open database postgresql://hermit:\\*\\*\\*@127.0.0.1:9/nope"):
        open_database("postgresql://hermit:secret@127.0.0.1:9/nope")


def test_settings_defaults_match_the_contract():
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///./hermit.db"
    assert (s.host, s.port) == ("127.0.0.1", 8800)
    assert (s.default_provider, s.default_model, s.default_base_url) == ("ollama", "deepseek-r1:32b", "http://localhost:11434/v1")
    assert s.default_api_key == "" and s.default_max_tokens == 2048 and s.request_timeout == 120
    assert s.admin_token is None
    assert (s.github_url, s.github_api_url) == ("https://github.com", "https://api.github.com")


def test_settings_reject_nonsense_clearly():
    with pytest.raises(SettingsError, match="HERMIT_PORT"):
        Settings.from_env({"HERMIT_PORT": "eighty"})
    with pytest.raises(SettingsError, match="HERMIT_REQUEST_TIMEOUT_SECONDS"):
        Settings.from_env({"HERMIT_REQUEST_TIMEOUT_SECONDS": "0"})


def test_registry_has_all_twenty_providers_and_their_aliases():
    names = [p.name for p in prov.PROVIDERS]
    assert names == [
        "openai", "openrouter", "anthropic", "deepseek", "ollama", "vllm", "lmstudio", "google-gemini",
        "xai-grok", "alibaba-qwen", "minimax", "glm", "github-models", "github-copilot", "copilot-proxy",
        "xiaomi", "amazon-bedrock", "nvidia", "huggingface", "openai-compatible",
    ]
    aliases = {"gemini": "google-gemini", "xai": "xai-grok", "grok": "xai-grok", "qwen": "alibaba-qwen",
               "mimo": "xiaomi", "bedrock": "amazon-bedrock", "hugging-face": "huggingface"}
    for alias, canonical in aliases.items():
        assert prov.canonical_name(alias) == canonical
    assert prov.get_provider("glm").base_url == "https://api.z.ai/api/paas/v4"
    assert prov.get_provider("github-models").chat_path == "/inference/chat/completions"
    with pytest.raises(prov.UnknownProvider, match="known providers: openai"):
        prov.get_provider("acme")


def test_provider_env_overrides_come_before_builtin_defaults():
    p = prov.get_provider("xai")
    env = {"HERMIT_XAI_GROK_BASE_URL": "http://grok.local/v1", "HERMIT_XAI_GROK_MODEL": "grok-x", "HERMIT_XAI_GROK_API_KEY": "xai-k"}
    assert prov.effective_base_url(p, None, env) == "http://grok.local/v1"
    assert prov.effective_model(p, "", env) == "grok-x"
    assert prov.effective_api_key(p, None, env) == "xai-k"
    assert prov.effective_base_url(p, "http://mine/v1", env) == "http://mine/v1"
    assert prov.effective_base_url(p, None, {}) == "https://api.x.ai/v1"


def test_reasoning_models_get_max_completion_tokens():
    assert prov.limit_field_for(prov.get_provider("openai"), "o4-mini") == "max_completion_tokens"
    assert prov.limit_field_for(prov.get_provider("ollama"), "gpt-5") == "max_tokens"  # ollama ignores the other
    assert prov.limit_field_for(prov.get_provider("github-copilot"), "gpt-5.1") == "max_completion_tokens"


def test_bootstrap_profile_only_on_first_run(cli, base_env):
    first = cli("profiles", "list", "--json")
    assert first.returncode == 0, first.stderr
    import json

    (profile,) = json.loads(first.stdout)["data"]
    assert profile["name"] == "default" and profile["is_active"]
    assert profile["base_url"] == base_env["HERMIT_DEFAULT_BASE_URL"] and profile["model"] == "fake-model-a"
    assert profile["api_key_hint"] == "sk-…0001" and profile["api_key_set"]
    assert cli("profiles", "add", "--name", "b", "--provider", "ollama", "--skip-test", "--activate").returncode == 0
    assert cli("profiles", "delete", "default").returncode == 0
    again = json.loads(cli("profiles", "list", "--json", env={"HERMIT_DEFAULT_MODEL": "changed"}).stdout)["data"]
    assert [p["name"] for p in again] == ["b"]  # not re-created on later runs


def test_secrets_are_not_stored_in_plain_text(cli, base_env, tmp_path):
    assert cli("profiles", "list").returncode == 0
    for part in tmp_path.glob("hermit.db*"):  # the database and its write-ahead log
        assert b"sk-test-upstream-key-0001" not in part.read_bytes(), part
