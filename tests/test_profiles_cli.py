"""`hermit profiles ...` run as a user runs it: saving, quick tests, history, errors and exit codes."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from conftest import cli_json, free_port, run_cli

PROFILE_FIELDS = {
    "id", "name", "provider", "base_url", "model", "default_max_tokens", "allow_client_model_override",
    "auth_profile_id", "is_active", "api_key_set", "api_key_hint", "created_at", "updated_at", "last_activated_at",
}
KEY = "sk-cli-test-key-9f3a"


def db_path(env: dict[str, str]) -> Path:
    return Path(env["HERMIT_DATABASE_URL"][len("sqlite:///"):])


def ledger_clients(env: dict[str, str]) -> list[tuple[str | None, int, str | None]]:
    with sqlite3.connect(db_path(env)) as conn:
        return conn.execute("SELECT client, status_code, profile_name FROM ledger ORDER BY id").fetchall()


def one_clear_line(result) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_profile_lifecycle_from_the_shell(cli, upstream, base_env):
    added = cli_json(cli(
        "profiles", "add", "--name", "fast", "--provider", "openai-compatible", "--base-url", upstream.base_url,
        "--model", "fake-model-b", "--api-key", KEY, "--default-max-tokens", "64", "--json",
    ))
    assert PROFILE_FIELDS <= set(added)
    assert added["name"] == "fast" and added["model"] == "fake-model-b" and added["default_max_tokens"] == 64
    assert added["api_key_set"] is True and added["api_key_hint"] == "sk-…9f3a" and not added["is_active"]
    # the quick test ran against the upstream and is marked in the ledger
    assert ("hermit-quick-test", 200, "fast") in ledger_clients(base_env)
    quick = [r for r in upstream.requests if r.headers.get("authorization") == f"Bearer {KEY}"]
    assert quick and quick[-1].json.get("max_tokens") == 1 and quick[-1].json.get("stream") is False

    listed = cli_json(cli("--json", "profiles", "list"))
    assert [p["name"] for p in listed["data"]] == ["default", "fast"]
    human = cli("profiles", "list")
    assert human.returncode == 0 and "NAME" in human.stdout and "fast" in human.stdout and KEY not in human.stdout

    # update changes only the fields given
    updated = cli_json(cli("profiles", "update", "fast", "--default-max-tokens", "128", "--json"))
    assert updated["default_max_tokens"] == 128
    assert {k: updated[k] for k in ("model", "base_url", "api_key_hint", "provider")} == {
        k: added[k] for k in ("model", "base_url", "api_key_hint", "provider")
    }

    # activate by exact name, then by id; current follows
    active = cli_json(cli("profiles", "activate", "fast", "--json"))
    assert active["is_active"] and active["last_activated_at"]
    assert cli_json(cli("profiles", "current", "--json"))["name"] == "fast"
    refused = cli("profiles", "delete", "fast")
    assert refused.returncode == 1 and "active" in one_clear_line(refused)

    assert cli("profiles", "activate", "1", "--skip-test").returncode == 0
    deleted = cli_json(cli("profiles", "delete", str(added["id"]), "--json"))
    assert deleted["name"] == "fast"
    assert [p["name"] for p in cli_json(cli("profiles", "list", "--json"))["data"]] == ["default"]

    history = cli_json(cli("profiles", "history", "--json"))["data"]
    assert [h["profile_name"] for h in history][:3] == ["default", "fast", "default"]
    assert all(set(h) == {"id", "profile_id", "profile_name", "activated_at", "source"} for h in history)
    assert {h["source"] for h in history} == {"cli"}
    text = cli("profiles", "history")
    assert text.returncode == 0 and "SOURCE" in text.stdout and "fast" in text.stdout


def test_history_lets_an_earlier_profile_come_back(cli, upstream):
    for name in ("one", "two"):
        assert cli("profiles", "add", "--name", name, "--provider", "openai-compatible", "--base-url",
                   upstream.base_url, "--activate", "--skip-test").returncode == 0
    history = cli_json(cli("profiles", "history", "--json"))["data"]
    earlier = next(h for h in history if h["profile_name"] == "one")
    back = cli_json(cli("profiles", "activate", str(earlier["profile_id"]), "--json"))
    assert back["name"] == "one" and back["is_active"]
    assert cli_json(cli("profiles", "history", "--json"))["data"][0]["profile_name"] == "one"
    assert cli("profiles", "delete", "two").returncode == 0


def test_alias_is_stored_canonical_and_defaults_come_from_env_then_builtin(cli):
    grok = cli_json(cli("profiles", "add", "--name", "g", "--provider", "grok", "--skip-test", "--json"))
    assert grok["provider"] == "xai-grok"
    assert grok["base_url"] == "https://api.x.ai/v1" and grok["model"] == "grok-4-fast-reasoning"
    env = {"HERMIT_OPENROUTER_BASE_URL": "http://127.0.0.1:9/or/v1", "HERMIT_OPENROUTER_MODEL": "env/model"}
    router = cli_json(cli("profiles", "add", "--name", "r", "--provider", "OpenRouter", "--skip-test", "--json", env=env))
    assert (router["provider"], router["base_url"], router["model"]) == ("openrouter", "http://127.0.0.1:9/or/v1", "env/model")
    # an explicit flag wins over the environment
    explicit = cli_json(cli("profiles", "add", "--name", "r2", "--provider", "openrouter", "--model", "mine",
                            "--skip-test", "--json", env=env))
    assert explicit["model"] == "mine"


def test_unknown_provider_is_refused_with_the_known_names(cli):
    result = cli("profiles", "add", "--name", "x", "--provider", "bogus", "--skip-test")
    line = one_clear_line(result)
    assert result.returncode == 2
    assert "bogus" in line and "openai-compatible" in line and "xai-grok (xai, grok)" in line and "gemini" in line


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["profiles", "add", "--name", "default", "--provider", "openai", "--skip-test"], 1, "already exists"),
        (["profiles", "update", "nope", "--model", "x"], 1, "no profile"),
        (["profiles", "activate", "999"], 1, "no profile"),
        (["profiles", "delete", "nope"], 1, "no profile"),
        (["profiles", "add", "--name", "u", "--provider", "openai", "--base-url", "not a url", "--skip-test"], 2, "base_url"),
        (["profiles", "add", "--provider", "openai"], 2, "--name"),
        (["profiles", "test"], 2, "--saved"),
        (["profiles", "add", "--name", "a", "--provider", "github-copilot", "--auth-profile-id", "7", "--skip-test"], 1,
         "auth_profile_id 7"),
        (["profiles", "update", "default", "--name", "123"], 2, "number"),
    ],
)
def test_user_errors_are_one_line_with_the_right_exit_code(cli, args, code, words):
    result = cli(*args)
    assert result.returncode == code, result.stderr
    assert words in one_clear_line(result)
    assert result.stdout == ""


def test_json_flag_before_or_after_the_subcommand(cli):
    before = json.loads(cli("--json", "profiles", "current").stdout)
    after = json.loads(cli("profiles", "current", "--json").stdout)
    assert before == after and before["name"] == "default"


def test_failed_quick_test_saves_and_switches_nothing(cli, upstream, base_env):
    before = cli_json(cli("profiles", "list", "--json"))
    result = cli("profiles", "add", "--name", "bad", "--provider", "openai-compatible",
                 "--base-url", upstream.url("error-401"), "--activate", "--json")
    assert result.returncode == 1 and result.stdout == ""
    line = one_clear_line(result)
    assert "quick test failed" in line and "rejected the API key" in line and "401" in line
    assert cli_json(cli("profiles", "list", "--json")) == before

    # update and activate are tested too, and change nothing when the test fails
    result = cli("profiles", "update", "default", "--base-url", upstream.url("error-404"))
    assert result.returncode == 1 and "not found" in one_clear_line(result)
    assert cli_json(cli("profiles", "list", "--json")) == before
    assert cli("profiles", "add", "--name", "later", "--provider", "openai-compatible",
               "--base-url", upstream.url("garbage"), "--skip-test").returncode == 0
    result = cli("profiles", "activate", "later")
    assert result.returncode == 1 and "not OpenAI-compatible" in one_clear_line(result)
    assert cli_json(cli("profiles", "current", "--json"))["name"] == "default"
    clients = ledger_clients(base_env)
    assert [c for c, _s, _n in clients] == ["hermit-quick-test"] * 3
    assert [s for _c, s, _n in clients] == [401, 404, 200]


def test_quick_test_of_a_saved_or_unsaved_definition(cli, upstream):
    ok = cli_json(cli("profiles", "test", "--saved", "default", "--json"))
    assert set(ok) == {"ok", "status_code", "latency_ms", "message", "model"}
    assert ok["ok"] is True and ok["status_code"] == 200 and ok["model"] == "fake-model-a"
    human = cli("profiles", "test", "--name", "tmp", "--provider", "openai-compatible", "--base-url",
                upstream.base_url, "--model", "fake-model-b")
    assert human.returncode == 0 and "ok" in human.stdout
    failed = cli("profiles", "test", "--provider", "openai-compatible", "--base-url", upstream.url("error-403"), "--json")
    assert failed.returncode == 1
    body = json.loads(failed.stdout)
    assert body["ok"] is False and body["status_code"] == 403 and "rejected the API key" in body["message"]
    assert [p["name"] for p in cli_json(cli("profiles", "list", "--json"))["data"]] == ["default"]


# -- the causes a quick test names ------------------------------------------------------------


class JunkServer:
    """Answers every connection with plain-text HTTP at once (so a TLS client fails its handshake)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def junk_server():
    server = JunkServer()
    yield server
    server.close()


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_quick_test_names_each_cause_in_plain_words(upstream, junk_server, transport, base_env):
    """Both upstream clients (the CLI's and the server's) give the same plain causes."""
    from hermit.core.models import Profile
    from hermit.proxy.server import make_upstream_client
    from hermit.services.probe import probe
    from hermit.services.profiles import resolve_target
    from hermit.services.upstream_auth import UpstreamAuth

    closed = free_port()
    cases = {
        f"http://127.0.0.1:{closed}/v1": ("connection_refused", "connection refused"),
        "http://no-such-host.invalid/v1": ("dns_failure", "DNS failure"),
        f"https://127.0.0.1:{junk_server.port}/v1": ("tls_error", "TLS error"),
        upstream.url("error-401"): ("key_rejected", "rejected the API key (HTTP 401)"),
        upstream.url("error-403"): ("key_rejected", "rejected the API key (HTTP 403)"),
        upstream.url("error-404"): ("not_found", "model or path not found (HTTP 404)"),
        upstream.url("ok").replace("/v1", "/nothing-here"): ("not_found", "HTTP 404"),
        upstream.url("slow-3"): ("timeout", "timed out after 0.5 s"),
        upstream.url("garbage"): ("not_openai_compatible", "not OpenAI-compatible"),
        upstream.url("ok"): ("ok", "ok"),
    }

    async def run_all():
        client = make_upstream_client(5, transport)
        auth = UpstreamAuth(None, client)
        out = {}
        try:
            for url in cases:
                profile = Profile(0, "t", "openai-compatible", url, "fake-model-a", KEY, None, False, None, None,
                                  False, 0, 0, None)
                result, entry = await probe(resolve_target(profile, {}), auth, client, timeout=0.5)
                out[url] = (result, entry)
        finally:
            await client.aclose()
        return out

    results = asyncio.run(run_all())
    for url, (reason, words) in cases.items():
        result, entry = results[url]
        assert (result.reason, result.ok) == (reason, reason == "ok"), (url, result.message)
        assert words in result.message, (url, result.message)
        assert entry.client == "hermit-quick-test"
        assert KEY not in result.message


def test_database_problems_are_one_clear_line(cli, tmp_path, base_env):
    missing = cli("--database-url", f"sqlite:///{tmp_path / 'nope' / 'x.db'}", "profiles", "list")
    assert missing.returncode == 1 and "does not exist" in one_clear_line(missing)
    unreachable = cli("--database-url", "postgresql://hermit:pw@127.0.0.1:9/hermit", "profiles", "list", timeout=30)
    assert unreachable.returncode == 1 and "cannot open database" in one_clear_line(unreachable)
    assert "pw@" not in unreachable.stderr


def test_database_locked_beyond_the_timeout_is_one_clear_line(cli, base_env):
    assert cli("profiles", "list").returncode == 0  # create the database
    holder = sqlite3.connect(db_path(base_env), timeout=0.1, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        # the CLI exactly as `hermit` runs it, with a shorter busy timeout so the test stays fast
        code = ("import sys, hermit.store.db as d; d.BUSY_TIMEOUT_MS = 300; from hermit.cli import main; "
                "sys.exit(main(sys.argv[1:]))")
        import subprocess

        result = subprocess.run(
            [sys.executable, "-c", code, "profiles", "add", "--name", "x", "--provider", "openai", "--skip-test"],
            env=base_env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 1
    assert "locked" in one_clear_line(result)
    assert [p["name"] for p in cli_json(cli("profiles", "list", "--json"))["data"]] == ["default"]


def test_hermit_proxy_name_and_help_mention_the_commands(base_env):
    result = run_cli(base_env, "profiles", "--help")
    assert result.returncode == 0
    for action in ("list", "current", "history", "add", "update", "delete", "activate", "test"):
        assert action in result.stdout
