"""Auth profiles and GitHub Copilot against a fake GitHub on loopback: device flow, token exchange, headers."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from conftest import cli_json
from fake_github import FakeGitHub

KNOWN_GH_TOKEN = "gho_knownGitHubToken000011112222"


@pytest.fixture
def github():
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def gh_env(github):
    return {"HERMIT_GITHUB_URL": github.url, "HERMIT_GITHUB_API_URL": github.url}


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


# -- device flow ----------------------------------------------------------------------------


def test_device_flow_from_the_cli_honours_interval_and_slow_down(cli, github, gh_env):
    github.script = ["pending", "slow_down", "pending", "ok"]
    result = cli("auth", "login-github-copilot", "--name", "work", "--device", "--client-id", "test-client", "--json",
                 env=gh_env)
    assert result.returncode == 0, result.stderr
    auth = json.loads(result.stdout)  # exactly one JSON document; the instructions went to stderr
    assert set(auth) == {"id", "name", "kind", "token_set", "token_hint", "created_at"}
    assert auth["name"] == "work" and auth["kind"] == "github-copilot" and auth["token_set"] is True
    (device,) = github.devices.values()
    assert device.token not in result.stdout + result.stderr and auth["token_hint"] == "gho_…ijkl"
    assert "ABCD-" in result.stderr and f"{github.url}/login/device" in result.stderr
    polls = gaps(device.polls)
    assert len(device.polls) == 4
    assert polls[0] >= github.interval * 0.9
    assert all(g >= github.slow_down_interval * 0.9 for g in polls[1:]), polls  # slowed down after slow_down
    listed = cli_json(cli("auth", "list", "--json"))
    assert [a["name"] for a in listed["data"]] == ["work"]
    human = cli("auth", "list")
    assert "work" in human.stdout and "gho_…ijkl" in human.stdout and device.token not in human.stdout


@pytest.mark.parametrize("script, words", [(["pending", "denied"], "denied"), (["expired"], "expired")])
def test_device_flow_stops_cleanly_on_denial_or_expiry(cli, github, gh_env, script, words):
    github.script = script
    result = cli("auth", "login-github-copilot", "--name", "w", "--device", "--client-id", "test-client", env=gh_env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and words in result.stderr.strip().splitlines()[-1]
    assert "Open" in result.stdout and "ABCD-" in result.stdout
    assert cli_json(cli("auth", "list", "--json"))["data"] == []


def test_device_flow_gives_up_when_the_code_expires_locally(cli, github, gh_env):
    github.script = ["pending"]
    github.expires_in = 0.4
    started = time.monotonic()
    result = cli("auth", "login-github-copilot", "--name", "w", "--device", env={**gh_env, "GITHUB_OAUTH_CLIENT_ID": "test-client"})
    assert result.returncode == 1 and "expired" in result.stderr
    assert time.monotonic() - started < 10


def test_device_flow_needs_a_client_id(cli, github, gh_env):
    result = cli("auth", "login-github-copilot", "--name", "w", "--device", env=gh_env)
    assert result.returncode == 2 and "GITHUB_OAUTH_CLIENT_ID" in result.stderr and "--client-id" in result.stderr
    result = cli("auth", "login-github-copilot", "--name", "w", "--device", "--client-id", "unknown", env=gh_env)
    assert result.returncode == 1 and "client_id" in result.stderr.lower()
    result = cli("auth", "login-github-copilot", "--name", "w", env=gh_env)
    assert result.returncode == 2  # --github-token or --device is required


def test_device_flow_over_http(make_server, github, gh_env):
    server = make_server(**gh_env, GITHUB_OAUTH_CLIENT_ID="test-client")
    with httpx.Client(base_url=server.url, timeout=20) as client:
        github.script = ["pending", "ok"]
        start = client.post("/auth-profiles/github-copilot/device/start", json={})
        assert start.status_code == 200, start.text
        code = start.json()
        assert set(code) == {"device_code", "user_code", "verification_uri", "expires_in", "interval"}
        done = client.post("/auth-profiles/github-copilot/device/complete",
                           json={"name": "http-login", "device_code": code["device_code"]})
        assert done.status_code == 201, done.text
        assert done.json()["name"] == "http-login" and done.json()["token_set"] is True
        assert github.devices[code["device_code"]].token not in done.text

        github.script = ["pending", "denied"]
        code = client.post("/auth-profiles/github-copilot/device/start", json={"client_id": "test-client"}).json()
        denied = client.post("/auth-profiles/github-copilot/device/complete",
                             json={"name": "nope", "device_code": code["device_code"], "client_id": "test-client"})
        assert denied.status_code == 400 and "denied" in denied.json()["error"]["message"]
        github.script = ["expired"]
        code = client.post("/auth-profiles/github-copilot/device/start", json={}).json()
        expired = client.post("/auth-profiles/github-copilot/device/complete",
                              json={"name": "nope", "device_code": code["device_code"]})
        assert expired.status_code == 400 and expired.json()["error"]["code"] == "expired_token"
        assert client.post("/auth-profiles/github-copilot/device/complete", json={"name": "x"}).status_code == 400
        assert [a["name"] for a in client.get("/auth-profiles").json()["data"]] == ["http-login"]


# -- Copilot requests -------------------------------------------------------------------------


def login_and_add_copilot_profile(cli, github, gh_env) -> dict:
    github.github_tokens.add(KNOWN_GH_TOKEN)
    auth = cli_json(cli("auth", "login-github-copilot", "--name", "work", "--github-token", KNOWN_GH_TOKEN, "--json",
                        env=gh_env))
    assert auth["token_hint"] == "gho_…2222"
    profile = cli_json(cli("profiles", "add", "--name", "copilot", "--provider", "github-copilot", "--model", "gpt-4.1",
                           "--auth-profile-id", str(auth["id"]), "--activate", "--json", env=gh_env))
    assert profile["is_active"] and profile["auth_profile_id"] == auth["id"]
    return profile


def chat(server, messages=None) -> httpx.Response:
    messages = messages or [{"role": "user", "content": "hello"}]
    return httpx.post(server.v1 + "/chat/completions", json={"model": "x", "messages": messages}, timeout=20)


def test_copilot_profile_exchanges_caches_and_refreshes_once_on_401(cli, github, gh_env, make_server):
    login_and_add_copilot_profile(cli, github, gh_env)
    # the quick test exchanged the token and reached the Copilot API named by endpoints.api
    assert github.exchanges == [KNOWN_GH_TOKEN] and github.chat_requests[-1]["status"] == 200

    server = make_server(**gh_env)
    assert chat(server).status_code == 200
    assert chat(server, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                         {"role": "user", "content": "c"}]).status_code == 200
    assert len(github.exchanges) == 2  # one for the server, then cached
    first, second = github.chat_requests[-2:]
    headers = first["headers"]
    assert headers["authorization"].startswith("Bearer tid=")
    assert headers["editor-version"].startswith("vscode/") and headers["editor-plugin-version"].startswith("copilot-chat/")
    assert headers["copilot-integration-id"] == "vscode-chat" and headers["user-agent"].startswith("GitHubCopilotChat/")
    assert (headers["x-initiator"], second["headers"]["x-initiator"]) == ("user", "agent")
    assert first["body"]["model"] == "gpt-4.1"
    assert KNOWN_GH_TOKEN not in json.dumps(github.chat_requests)

    github.revoke_copilot_tokens()  # the Copilot API now answers 401 to the cached token
    response = chat(server)
    assert response.status_code == 200, response.text
    assert len(github.exchanges) == 3 and [r["status"] for r in github.chat_requests[-2:]] == [401, 200]

    # a refresh that cannot help is not retried forever: the 401 goes back to the client, once
    github.revoke_copilot_tokens()
    github.github_tokens.clear()
    response = chat(server)
    assert response.status_code == 401
    assert len(github.exchanges) == 4 and [r["status"] for r in github.chat_requests[-1:]] == [401]
    rows = [r for r in server.rows() if r["client"] != "hermit-quick-test"]
    assert [r["status_code"] for r in rows] == [200, 200, 200, 401]
    assert rows[0]["prompt_tokens"] == 7 and rows[0]["provider"] == "github-copilot"


def test_copilot_token_is_cached_until_shortly_before_it_expires(base_env, github, gh_env):
    from hermit.core.models import Profile
    from hermit.services.profiles import resolve_target
    from hermit.services.upstream_auth import UpstreamAuth
    from hermit.settings import Settings
    from hermit.wiring import build_services

    services = build_services(Settings.from_env({**base_env, **gh_env}))
    github.github_tokens.add(KNOWN_GH_TOKEN)
    auth_profile, _ = services.auth_profiles.save("w", "github-copilot", KNOWN_GH_TOKEN)

    def target(base_url=None):
        profile = Profile(1, "cp", "github-copilot", base_url, None, None, None, False, None, auth_profile.id,
                          True, 0, 0, None)
        return resolve_target(profile, {})

    now = [time.time()]

    async def main():
        async with httpx.AsyncClient() as client:
            auth = UpstreamAuth(services, client, clock=lambda: now[0])
            base, headers = await auth.resolve(target())
            assert base == github.copilot_api  # endpoints.api replaces the built-in default
            await auth.resolve(target())
            assert auth.exchanges == 1
            now[0] += github.refresh_in - 60 - 5  # still fresh
            await auth.resolve(target())
            assert auth.exchanges == 1
            now[0] += 10  # within a minute of refresh_in: exchange again
            _base, fresh = await auth.resolve(target())
            assert auth.exchanges == 2 and fresh["authorization"] != headers["authorization"]
            explicit, _ = await auth.resolve(target("http://127.0.0.1:9/own"))
            assert explicit == "http://127.0.0.1:9/own"  # a base URL the operator set wins

    try:
        asyncio.run(main())
    finally:
        services.close()


def test_copilot_without_a_usable_token_fails_clearly(cli, github, gh_env, make_server):
    auth = cli_json(cli("auth", "login-github-copilot", "--name", "pat", "--github-token", "ghp_personalAccessToken99",
                        "--json", env=gh_env))
    result = cli("profiles", "add", "--name", "cp", "--provider", "github-copilot",
                 "--auth-profile-id", str(auth["id"]), env=gh_env)
    assert result.returncode == 1 and "GitHub token was rejected" in result.stderr
    assert "ghp_personalAccessToken99" not in result.stderr
    assert cli("profiles", "add", "--name", "cp", "--provider", "github-copilot", "--auth-profile-id",
               str(auth["id"]), "--activate", "--skip-test", env=gh_env).returncode == 0
    server = make_server(**gh_env)
    response = chat(server)
    assert response.status_code == 502 and response.json()["error"]["type"] == "upstream_auth_error"
    assert "ghp_personalAccessToken99" not in response.text and "rejected" in response.text
    bare = cli("profiles", "test", "--provider", "github-copilot", env=gh_env)
    assert bare.returncode == 1 and "auth-profile-id" in bare.stderr
