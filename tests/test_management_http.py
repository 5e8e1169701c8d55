"""The management routes through a running server: profiles, quick tests, history, config, admin token."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import run_cli

PROFILE_FIELDS = {
    "id", "name", "provider", "base_url", "model", "default_max_tokens", "allow_client_model_override",
    "auth_profile_id", "is_active", "api_key_set", "api_key_hint", "created_at", "updated_at", "last_activated_at",
}
KEY = "sk-http-test-key-77aa"


def assert_error(response: httpx.Response, status: int, type_: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}, body
    if type_:
        assert body["error"]["type"] == type_, body
    return body["error"]


@pytest.fixture
def api(hermit):
    with httpx.Client(base_url=hermit.url, timeout=20) as client:
        yield client


MARK = "management-http-test-marker"


def chat(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"model": "whatever", "messages": [{"role": "user", "content": MARK}]})


def seen(upstream) -> list:
    """Requests of this module's chat() that reached the upstream (other tests' traffic ignored)."""
    return [r for r in upstream.requests if r.json and MARK in json.dumps(r.json.get("messages"))]


def test_profiles_over_http(api, upstream, hermit):
    listed = api.get("/profiles").json()
    assert [p["name"] for p in listed["data"]] == ["default"] and PROFILE_FIELDS <= set(listed["data"][0])
    assert api.get("/profiles/current").json()["name"] == "default"

    created = api.post("/profiles", json={
        "name": "b", "provider": "openai-compatible", "base_url": upstream.base_url, "model": "fake-model-b",
        "api_key": KEY, "default_max_tokens": 32,
    })
    assert created.status_code == 201, created.text
    b = created.json()
    assert PROFILE_FIELDS <= set(b) and b["api_key_hint"] == "sk-…77aa" and b["is_active"] is False
    assert KEY not in created.text
    assert api.get(f"/profiles/{b['id']}").json() == api.get("/profiles/b").json() == b

    # PUT changes only the fields given; id or exact name both work
    updated = api.put(f"/profiles/{b['id']}", json={"allow_client_model_override": True})
    assert updated.status_code == 200, updated.text
    assert updated.json()["allow_client_model_override"] is True
    assert {k: updated.json()[k] for k in ("model", "base_url", "api_key_hint", "default_max_tokens")} == {
        k: b[k] for k in ("model", "base_url", "api_key_hint", "default_max_tokens")
    }
    # null clears a field back to its default
    cleared = api.put("/profiles/b", json={"default_max_tokens": None})
    assert cleared.status_code == 200 and cleared.json()["default_max_tokens"] is None

    # activation switches the proxy at once
    activated = api.post("/profiles/b/activate")
    assert activated.status_code == 200 and activated.json()["is_active"] is True
    assert api.get("/health").json()["active_profile"]["name"] == "b"
    upstream.clear()
    assert chat(api).status_code == 200
    assert [r.json["model"] for r in seen(upstream)] == ["whatever"]  # b allows the client's model
    assert seen(upstream)[-1].headers.get("authorization") == f"Bearer {KEY}"

    # an update of the active profile takes effect at once too
    assert api.put("/profiles/b", json={"allow_client_model_override": False, "skip_test": True}).status_code == 200
    upstream.clear()
    assert chat(api).status_code == 200
    assert [r.json["model"] for r in seen(upstream)] == ["fake-model-b"]

    assert_error(api.delete("/profiles/b"), 409, "conflict_error")
    assert api.post("/profiles/default/activate", json={"skip_test": True}).status_code == 200
    deleted = api.delete("/profiles/b")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(api.delete("/profiles/b"), 404)

    history = api.get("/profiles/history").json()["data"]
    assert [(h["profile_name"], h["source"]) for h in history[:2]] == [("default", "http"), ("b", "http")]
    assert set(history[0]) == {"id", "profile_id", "profile_name", "activated_at", "source"}
    assert len(api.get("/profiles/history", params={"limit": 1}).json()["data"]) == 1

    quick_rows = [r for r in hermit.rows() if r["client"] == "hermit-quick-test"]
    assert [(r["profile_name"], r["status_code"]) for r in quick_rows] == [("b", 200), ("b", 200)]


def test_create_and_activate_in_one_call(api, upstream):
    created = api.post("/profiles", json={"name": "c", "provider": "openai-compatible", "base_url": upstream.base_url,
                                          "model": "fake-model-b", "activate": True})
    assert created.status_code == 201 and created.json()["is_active"] is True
    assert api.get("/health").json()["active_profile"]["model"] == "fake-model-b"


def test_failed_quick_test_is_422_and_changes_nothing(api, upstream, hermit):
    before = api.get("/profiles").json()
    bad = api.post("/profiles", json={"name": "bad", "provider": "openai-compatible",
                                      "base_url": upstream.url("error-401"), "activate": True})
    error = assert_error(bad, 422, "probe_failed")
    assert "rejected the API key" in error["message"] and error["code"] == "key_rejected"
    assert bad.json()["probe"]["ok"] is False and bad.json()["probe"]["status_code"] == 401

    error = assert_error(api.put("/profiles/default", json={"base_url": upstream.url("garbage")}), 422, "probe_failed")
    assert "not OpenAI-compatible" in error["message"]

    assert api.post("/profiles", json={"name": "down", "provider": "openai-compatible",
                                       "base_url": upstream.url("error-404"), "skip_test": True}).status_code == 201
    error = assert_error(api.post("/profiles/down/activate"), 422, "probe_failed")
    assert "not found" in error["message"]
    after = api.get("/profiles").json()
    assert [p for p in after["data"] if p["name"] != "down"] == before["data"]
    assert api.get("/health").json()["active_profile"]["name"] == "default"


def test_quick_test_route(api, upstream):
    ok = api.post("/profiles/test", json={"saved": "default"})
    assert ok.status_code == 200
    assert set(ok.json()) == {"ok", "status_code", "latency_ms", "message", "model"} and ok.json()["ok"] is True
    unsaved = api.post("/profiles/test", json={"provider": "openai-compatible", "base_url": upstream.base_url,
                                               "model": "fake-model-b", "api_key": KEY})
    assert unsaved.status_code == 200 and unsaved.json()["model"] == "fake-model-b"
    assert_error(api.post("/profiles/test", json={}), 400)
    assert_error(api.post("/profiles/test", json={"saved": "nope"}), 404)
    assert [p["name"] for p in api.get("/profiles").json()["data"]] == ["default"]


def test_quick_test_has_its_own_short_timeout(make_server, upstream):
    server = make_server(HERMIT_PROBE_TIMEOUT_SECONDS="0.5")
    response = httpx.post(server.url + "/profiles/test", timeout=10,
                          json={"provider": "openai-compatible", "base_url": upstream.url("slow-2")})
    error = assert_error(response, 422, "probe_failed")
    assert "timed out after 0.5 s" in error["message"] and error["code"] == "timeout"
    assert response.json()["probe"]["latency_ms"] < 1900


def test_bad_requests_get_openai_shaped_errors(api):
    assert_error(api.post("/profiles", content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert_error(api.post("/profiles", json=[1, 2]), 400)
    error = assert_error(api.post("/profiles", json={"name": "x", "provider": "bogus", "skip_test": True}), 400)
    assert error["param"] == "provider" and "xai-grok (xai, grok)" in error["message"]
    error = assert_error(api.post("/profiles", json={"name": "x", "provider": "openai", "colour": "red"}), 400)
    assert error["param"] == "colour"
    error = assert_error(api.post("/profiles", json={"provider": "openai"}), 400)
    assert error["param"] == "name"
    error = assert_error(api.post("/profiles", json={"name": "x", "provider": "openai", "base_url": "ftp://x"}), 400)
    assert error["param"] == "base_url"
    error = assert_error(api.post("/profiles", json={"name": "x", "provider": "openai", "default_max_tokens": "lots"}), 400)
    assert error["param"] == "default_max_tokens"
    error = assert_error(api.post("/profiles", json={"name": "x", "provider": "openai", "auth_profile_id": 42,
                                                     "skip_test": True}), 400)
    assert error["param"] == "auth_profile_id"
    assert_error(api.post("/profiles", json={"name": "default", "provider": "openai", "skip_test": True}), 409)
    assert_error(api.put("/profiles/nope", json={"model": "m"}), 404, "not_found_error")
    assert_error(api.post("/profiles/nope/activate"), 404)
    assert_error(api.get("/profiles/nope"), 404, "not_found_error")
    assert_error(api.get("/profiles/history", params={"limit": "x"}), 400)
    # a profile object sent back as it was read is accepted (read-only fields ignored)
    current = api.get("/profiles/current").json()
    assert api.put("/profiles/default", json={**current, "skip_test": True}).status_code == 200


def test_config_and_auth_profiles_over_http(api):
    assert api.get("/config/log-level").json() == {"log_level": "info"}
    put = api.put("/config/log-level", json={"log_level": "DEBUG"})
    assert put.status_code == 200 and put.json() == {"log_level": "debug"}
    error = assert_error(api.put("/config/log-level", json={"log_level": "loud"}), 400)
    assert "critical, error, warning, info, debug" in error["message"]

    token = "gho_httpAuthToken0123456789"
    created = api.post("/auth-profiles", json={"name": "work", "kind": "github-copilot", "github_token": token})
    assert created.status_code == 201, created.text
    assert set(created.json()) == {"id", "name", "kind", "token_set", "token_hint", "created_at"}
    assert created.json()["token_hint"] == "gho_…6789" and token not in created.text
    listed = api.get("/auth-profiles")
    assert [a["name"] for a in listed.json()["data"]] == ["work"] and token not in listed.text
    assert_error(api.post("/auth-profiles", json={"name": "x", "kind": "other", "github_token": "t"}), 400)
    assert_error(api.post("/auth-profiles", json={"name": "x"}), 400)


def test_admin_token_guards_every_management_route(make_server):
    server = make_server(HERMIT_ADMIN_TOKEN="s3cret-admin-token")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for method, path in [("GET", "/profiles"), ("GET", "/profiles/current"), ("GET", "/profiles/history"),
                             ("POST", "/profiles"), ("PUT", "/profiles/default"), ("DELETE", "/profiles/default"),
                             ("POST", "/profiles/default/activate"), ("POST", "/profiles/test"),
                             ("GET", "/auth-profiles"), ("POST", "/auth-profiles/github-copilot/device/start"),
                             ("GET", "/config/log-level"), ("GET", "/analytics/summary")]:
            error = assert_error(client.request(method, path), 401, "authentication_error")
            assert "Authorization: Bearer" in error["message"]
            wrong = client.request(method, path, headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 401
        ok = client.get("/profiles", headers={"authorization": "Bearer s3cret-admin-token"})
        assert ok.status_code == 200 and ok.json()["data"][0]["name"] == "default"
        assert client.get("/health").status_code == 200
        assert client.get("/v1/models").status_code == 200


def test_serve_refuses_a_public_address_without_an_admin_token(base_env):
    result = run_cli(base_env, "--headless", "serve", "--host", "0.0.0.0", "--port", "0", timeout=20)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "HERMIT_ADMIN_TOKEN=" in result.stderr and "127.0.0.1" in result.stderr
