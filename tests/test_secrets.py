"""Secrets kept secret: encrypted at rest under a key outside the database, shown only as hints."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import httpx

from conftest import cli_json

KEY = "sk-rawSecretUpstreamKey-5e7c"
GH_TOKEN = "gho_rawGitHubTokenForSecretsTest42"


def db_file(env: dict[str, str]) -> Path:
    return Path(env["HERMIT_DATABASE_URL"][len("sqlite:///"):])


def database_bytes(env: dict[str, str]) -> bytes:
    path = db_file(env)
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def copy_database(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    b.close()
    a.close()


def test_raw_secrets_appear_nowhere(cli, serve_process, upstream, base_env):
    outputs = []
    outputs.append(cli_json(cli("profiles", "add", "--name", "keyed", "--provider", "openai-compatible",
                                "--base-url", upstream.base_url, "--api-key", KEY, "--activate", "--json")))
    outputs.append(cli_json(cli("auth", "login-github-copilot", "--name", "gh", "--github-token", GH_TOKEN, "--json")))
    assert outputs[0]["api_key_hint"] == "sk-…5e7c" and outputs[1]["token_hint"] == "gho_…st42"
    for args in (["profiles", "list"], ["profiles", "current"], ["auth", "list"]):
        outputs.append(cli_json(cli(*args, "--json")))
    for args in (["profiles", "list"], ["auth", "list"]):
        human = cli(*args)
        assert human.returncode == 0 and KEY not in human.stdout and GH_TOKEN not in human.stdout
    failed = cli("profiles", "update", "keyed", "--base-url", upstream.url("error-401"))
    assert failed.returncode == 1 and KEY not in failed.stderr

    server = serve_process("--log-level", "debug")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path in ("/profiles", "/profiles/current", "/auth-profiles"):
            response = client.get(path)
            assert response.status_code == 200 and KEY not in response.text and GH_TOKEN not in response.text
        assert client.post("/profiles/test", json={"saved": "keyed"}).status_code == 200
        bad = client.post("/profiles", json={"name": "k2", "provider": "openai-compatible", "api_key": KEY,
                                             "base_url": upstream.url("error-401")})
        assert bad.status_code == 422 and KEY not in bad.text
        assert client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
                           ).status_code == 200
    code, out, log = server.stop()
    assert code == 0 and "POST /v1/chat/completions 200" in log
    assert any(r.headers.get("authorization") == f"Bearer {KEY}" for r in upstream.requests)  # it does reach the upstream

    text = json.dumps(outputs, ensure_ascii=False)
    assert KEY not in text and GH_TOKEN not in text
    assert KEY not in out + log and GH_TOKEN not in out + log
    raw = database_bytes(base_env)
    assert KEY.encode() not in raw and GH_TOKEN.encode() not in raw
    assert KEY[3:].encode() not in raw  # not even without its prefix
    with sqlite3.connect(db_file(base_env)) as conn:
        stored = [r[0] for r in conn.execute("SELECT api_key FROM profiles WHERE api_key IS NOT NULL")]
        stored += [r[0] for r in conn.execute("SELECT token FROM auth_profiles")]
    assert stored and all(value.startswith("enc:v1:") for value in stored)

    key_file = Path(base_env["HERMIT_CONFIG_DIR"]) / "secret.key"
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_secrets_can_come_from_standard_input(cli):
    saved = cli_json(cli("auth", "login-github-copilot", "--name", "piped", "--github-token", "-", "--json",
                         input=GH_TOKEN + "\n"))
    assert saved["token_hint"] == "gho_…st42"
    profile = cli_json(cli("profiles", "add", "--name", "piped", "--provider", "openai", "--api-key", "-",
                           "--skip-test", "--json", input=KEY + "\n"))
    assert profile["api_key_hint"] == "sk-…5e7c"
    empty = cli("profiles", "add", "--name", "x", "--provider", "openai", "--api-key", "-", "--skip-test", input="")
    assert empty.returncode == 2 and "standard input" in empty.stderr


def test_secret_key_from_the_environment_replaces_the_key_file(cli, base_env):
    env = {"HERMIT_SECRET_KEY": "a long random operator-chosen string"}
    assert cli("profiles", "add", "--name", "k", "--provider", "openai", "--api-key", KEY, "--skip-test", env=env).returncode == 0
    assert not (Path(base_env["HERMIT_CONFIG_DIR"]) / "secret.key").exists()
    assert cli_json(cli("profiles", "list", "--json", env=env))["data"][1]["api_key_hint"] == "sk-…5e7c"
    # without that key the secrets are locked, and saying so is all that changes
    other = cli_json(cli("profiles", "list", "--json", env={"HERMIT_SECRET_KEY": "another"}))
    assert other["data"][1]["api_key_set"] is True and "locked" in other["data"][1]["api_key_hint"]


def test_database_moved_without_its_key(cli, tmp_path, upstream, base_env, make_server):
    assert cli("profiles", "add", "--name", "moved", "--provider", "openai-compatible", "--base-url",
               upstream.base_url, "--api-key", KEY, "--activate").returncode == 0
    new_db = tmp_path / "elsewhere.db"
    copy_database(db_file(base_env), new_db)
    new_config = tmp_path / "other-config"
    env = {"HERMIT_DATABASE_URL": f"sqlite:///{new_db}", "HERMIT_CONFIG_DIR": str(new_config)}

    listed = cli_json(cli("profiles", "list", "--json", env=env))  # usable where no secret is needed
    moved = listed["data"][1]
    assert moved["name"] == "moved" and moved["api_key_set"] is True and "locked" in moved["api_key_hint"]
    assert cli("profiles", "add", "--name", "keyless", "--provider", "ollama", "--skip-test", env=env).returncode == 0
    assert not new_config.exists()  # read-only use never creates a key

    for args in (["profiles", "test", "--saved", "moved"], ["profiles", "activate", "moved"]):
        result = cli(*args, env=env)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "HERMIT_SECRET_KEY" in result.stderr and "moved without" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1

    server = make_server(**env)
    response = httpx.post(server.v1 + "/chat/completions", json={"messages": [{"role": "user", "content": "x"}]},
                          timeout=10)
    assert response.status_code == 502 and "HERMIT_SECRET_KEY" in response.json()["error"]["message"]
    server.stop()

    # re-entering the secret makes the profile usable again (under a new key file)
    fixed = cli_json(cli("profiles", "update", "moved", "--api-key", "sk-newKeyAfterMove-0042", "--json", env=env))
    assert fixed["api_key_hint"] == "sk-…0042" and (new_config / "secret.key").exists()


def test_plain_text_secrets_of_an_older_database_are_encrypted_when_opened(cli, base_env):
    assert cli("profiles", "list").returncode == 0
    path = db_file(base_env)
    old_key, old_token = "sk-plainOldStoredKey-1234", "gho_plainOldStoredToken5678"
    with sqlite3.connect(path) as conn:  # what an older Hermit left behind
        conn.execute("UPDATE profiles SET api_key = ? WHERE name = 'default'", (old_key,))
        conn.execute("INSERT INTO auth_profiles (name, kind, token, created_at, updated_at) "
                     "VALUES ('old', 'github-copilot', ?, 1, 1)", (old_token,))
    conn.close()
    assert old_key.encode() in database_bytes(base_env)

    listed = cli_json(cli("profiles", "list", "--json"))
    assert listed["data"][0]["api_key_hint"] == "sk-…1234"
    assert cli_json(cli("auth", "list", "--json"))["data"][0]["token_hint"] == "gho_…5678"
    raw = database_bytes(base_env)
    assert old_key.encode() not in raw and old_token.encode() not in raw
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT api_key FROM profiles WHERE name = 'default'").fetchone()[0].startswith("enc:v1:")
        assert conn.execute("SELECT token FROM auth_profiles").fetchone()[0].startswith("enc:v1:")
    conn.close()
