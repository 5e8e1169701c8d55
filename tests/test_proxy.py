"""The proxy path end to end: the official openai SDK -> Hermit -> a real fake upstream, ledger in SQLite."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

from conftest import run_cli, wait_for


def sdk(srv, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.v1, api_key="client-key-never-forwarded", max_retries=0, **kw)


def test_non_streaming_chat_is_relayed_and_recorded(hermit, upstream):
    upstream.clear()
    reply = sdk(hermit).chat.completions.create(
        model="client-model", messages=[{"role": "user", "content": "hello there"}], user="alice"
    )
    assert reply.choices[0].message.content.startswith("Hello from the fake upstream")
    (row,) = hermit.rows()
    assert row["endpoint"] == "chat" and row["stream"] is False and row["status_code"] == 200
    assert row["upstream_model"] == "fake-model-a"  # the profile's model, enforced
    assert row["client_model"] == "client-model"  # kept for audit
    assert (row["prompt_tokens"], row["completion_tokens"]) == (reply.usage.prompt_tokens, reply.usage.completion_tokens)
    assert row["total_tokens"] == reply.usage.total_tokens
    assert row["usage_source"] == "upstream"
    assert row["client"] == "openai-python" and row["user"] == "alice"
    assert row["profile_name"] == "default" and row["provider"] == "openai-compatible"
    assert row["latency_ms"] > 0 and row["overhead_ms"] >= 0 and row["overhead_ms"] <= row["latency_ms"]
    assert row["cost_usd"] is None  # no price known: null, never 0
    sent = upstream.requests[-1]
    assert sent.json["model"] == "fake-model-a"
    assert sent.headers["authorization"] == "Bearer sk-test-upstream-key-0001"
    assert "client-key-never-forwarded" not in json.dumps(sent.headers)
    assert "stream_options" not in sent.json  # only on streaming requests (OpenAI rejects it otherwise)


def test_overhead_header_on_every_response(hermit):
    raw = sdk(hermit).chat.completions.with_raw_response.create(model="x", messages=[{"role": "user", "content": "hi"}])
    overhead = float(raw.headers["x-hermit-overhead-ms"])
    (row,) = hermit.rows()
    assert 0 <= overhead <= row["latency_ms"]
    assert abs(overhead - row["overhead_ms"]) < 0.001  # the header and the ledger say the same
    bad = httpx.post(hermit.v1 + "/chat/completions", content=b"{nope")
    assert "x-hermit-overhead-ms" in bad.headers


def test_default_max_tokens_fills_only_when_client_sets_no_limit(hermit, upstream):
    client = sdk(hermit)
    upstream.clear()
    client.chat.completions.create(model="x", messages=[{"role": "user", "content": "a"}])
    client.chat.completions.create(model="x", messages=[{"role": "user", "content": "b"}], max_tokens=7)
    client.chat.completions.create(model="x", messages=[{"role": "user", "content": "c"}], max_completion_tokens=9)
    first, second, third = (r.json for r in list(upstream.requests)[-3:])
    assert first["max_tokens"] == 2048 and "max_completion_tokens" not in first
    assert second["max_tokens"] == 7
    assert third["max_completion_tokens"] == 9 and "max_tokens" not in third


def test_streaming_relays_chunks_and_records_usage(hermit, upstream):
    upstream.clear()
    stream = sdk(hermit).chat.completions.create(
        model="x", messages=[{"role": "user", "content": "count for me"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello")
    # The client did not ask for usage: Hermit asked upstream, recorded it, and hid the usage-only chunk.
    assert all(c.choices for c in chunks)
    assert upstream.requests[-1].json["stream_options"] == {"include_usage": True}
    (row,) = hermit.rows()
    assert row["stream"] is True and row["usage_source"] == "upstream"
    assert row["completion_tokens"] == len(text.split())
    assert row["ttft_ms"] is not None and 0 < row["ttft_ms"] <= row["latency_ms"]


def test_streaming_passes_usage_chunk_when_client_asks(hermit):
    chunks = list(
        sdk(hermit).chat.completions.create(
            model="x", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    (row,) = hermit.rows()
    assert row["completion_tokens"] == chunks[-1].usage.completion_tokens


def test_stream_is_relayed_chunk_by_chunk_not_buffered(make_server, upstream):
    # 8 chunks, 150 ms apart: the first must reach the client long before the last is sent.
    srv = make_server(HERMIT_DEFAULT_BASE_URL=upstream.url("slowstream-150+chunks-8"))
    import time

    start = time.perf_counter()
    arrivals = []
    for chunk in sdk(srv).chat.completions.create(model="x", messages=[{"role": "user", "content": "x"}], stream=True):
        arrivals.append(time.perf_counter() - start)
    assert len(arrivals) >= 8
    assert arrivals[1] < 0.6, arrivals  # one or two gaps in, not after the whole stream (>1.2 s)
    assert arrivals[-1] > 1.0


def test_async_client_and_embeddings_and_models(hermit, upstream):
    async def main():
        client = openai.AsyncOpenAI(base_url=hermit.v1, api_key="k", max_retries=0)
        chat = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        emb = await client.embeddings.create(model="text-embedding-3-small", input=["one two", "three"])
        models = await client.models.list()
        await client.close()
        return chat, emb, models

    chat, emb, models = asyncio.run(main())
    assert chat.choices[0].message.content
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 8
    assert [m.id for m in models.data] == ["fake-model-a"]  # the enforced model
    rows = hermit.rows()
    assert [r["endpoint"] for r in rows] == ["chat", "embeddings"]
    assert rows[1]["upstream_model"] == "text-embedding-3-small"  # embeddings keep the client's model
    assert rows[1]["prompt_tokens"] == emb.usage.prompt_tokens > 0


def test_client_model_override_and_upstream_model_list(make_server, upstream):
    srv = make_server()
    srv.services.profiles.update("default", {"allow_client_model_override": True})
    assert wait_for(lambda: srv.server.forwarder.target.allow_client_model_override, 3)
    upstream.clear()
    sdk(srv).chat.completions.create(model="fake-model-b", messages=[{"role": "user", "content": "hi"}])
    assert upstream.requests[-1].json["model"] == "fake-model-b"
    assert [m.id for m in sdk(srv).models.list().data] == ["fake-model-a", "fake-model-b"]


def test_identity_headers_and_user_agent_detection(hermit):
    headers = {"X-Hermit-Client": "nightly-batch", "X-Hermit-Project": "billing"}
    httpx.post(hermit.v1 + "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}, headers=headers)
    httpx.post(
        hermit.v1 + "/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        headers={"User-Agent": "curl/8.5.0"},
    )
    first, second = hermit.rows()
    assert (first["client"], first["project"]) == ("nightly-batch", "billing")
    assert (second["client"], second["project"]) == ("curl", None)


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_body"),
        (b'{"model": "m"}', 400, "missing_required_parameter"),
        (b'{"model": "m", "messages": "hi"}', 400, "missing_required_parameter"),
    ],
)
def test_bad_requests_get_openai_errors_and_ledger_rows(hermit, body, status, code):
    response = httpx.post(hermit.v1 + "/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    (row,) = hermit.rows()
    assert row["status_code"] == status and row["usage_source"] == "none"
    assert row["prompt_tokens"] == row["completion_tokens"] == 0 and row["error"]


def test_openai_sdk_sees_bad_request_as_exception(hermit):
    with pytest.raises(openai.BadRequestError):
        sdk(hermit).chat.completions.create(model="m", messages=[])


def test_body_over_limit_is_413_and_recorded(make_server):
    srv = make_server(HERMIT_MAX_BODY_BYTES="2048")
    big = {"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}
    response = httpx.post(srv.v1 + "/chat/completions", json=big)
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    (row,) = srv.rows()
    assert row["status_code"] == 413
    assert sdk(srv).chat.completions.create(model="m", messages=[{"role": "user", "content": "small"}]).choices


@pytest.mark.parametrize(
    "scenario, status, type_",
    [("garbage", 502, "upstream_error"), ("close", 502, "upstream_error"), ("slow-8", 504, "upstream_timeout")],
)
def test_upstream_faults_are_502_or_504_and_server_keeps_serving(make_server, upstream, scenario, status, type_):
    srv = make_server(HERMIT_DEFAULT_BASE_URL=upstream.url(scenario), HERMIT_REQUEST_TIMEOUT_SECONDS="1")
    response = httpx.post(srv.v1 + "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}, timeout=10)
    assert response.status_code == status
    assert response.json()["error"]["type"] == type_
    (row,) = srv.rows()
    assert row["status_code"] == status and row["error"]
    assert httpx.get(srv.url + "/health").json()["status"] == "ok"


def test_unreachable_upstream_is_502(make_server):
    srv = make_server(HERMIT_DEFAULT_BASE_URL="http://127.0.0.1:9/v1")
    with pytest.raises(openai.InternalServerError) as info:
        sdk(srv).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert "unreachable" in srv.rows()[0]["error"]


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
def test_upstream_error_status_and_body_pass_through(make_server, upstream, status):
    srv = make_server(HERMIT_DEFAULT_BASE_URL=upstream.url(f"error-{status}"))
    response = httpx.post(srv.v1 + "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == status
    direct = httpx.post(upstream.url(f"error-{status}") + "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert response.json() == direct.json()
    (row,) = srv.rows()
    assert row["status_code"] == status and str(status) in row["error"]


def test_stream_options_rejected_upstream_is_retried_without(make_server, upstream):
    srv = make_server(HERMIT_DEFAULT_BASE_URL=upstream.url("rejectstreamoptions"))
    chunks = list(sdk(srv).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    (row,) = srv.rows()
    assert row["status_code"] == 200 and row["usage_source"] == "estimated" and row["completion_tokens"] > 0


def test_stream_without_usage_is_estimated_never_zero(make_server, upstream):
    srv = make_server(HERMIT_DEFAULT_BASE_URL=upstream.url("nousage"))
    list(sdk(srv).chat.completions.create(model="m", messages=[{"role": "user", "content": "x y z"}], stream=True))
    (row,) = srv.rows()
    assert row["usage_source"] == "estimated" and row["prompt_tokens"] > 0 and row["completion_tokens"] > 0


def test_client_disconnect_midstream_still_records_an_estimate(make_server, upstream):
    srv = make_server(HERMIT_DEFAULT_BASE_URL=upstream.url("slowstream-100+chunks-30"))
    with httpx.stream(
        "POST", srv.v1 + "/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "go"}], "stream": True},
    ) as response:
        for i, _line in enumerate(response.iter_lines()):
            if i >= 4:
                break
    rows = wait_for(lambda: srv.rows(), timeout=5)
    (row,) = rows
    assert row["status_code"] == 499 and "disconnected" in row["error"]
    assert row["usage_source"] == "estimated" and row["completion_tokens"] > 0


def test_profile_pointing_at_hermit_itself_is_refused(make_server):
    srv = make_server()
    srv.services.profiles.update("default", {"base_url": srv.v1})
    assert wait_for(lambda: srv.server.forwarder.target.base_url == srv.v1, 3)
    response = httpx.post(srv.v1 + "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}, timeout=5)
    assert response.status_code == 508
    assert "points back at Hermit" in response.json()["error"]["message"]
    assert len(srv.rows()) == 1  # refused at once, no loop


def test_unknown_route_is_openai_shaped_404(hermit):
    response = httpx.get(hermit.url + "/v1/nothing-here")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_health_names_the_active_profile(hermit):
    body = httpx.get(hermit.url + "/health").json()
    assert body["status"] == "ok" and body["version"]
    assert body["active_profile"]["name"] == "default"
    assert set(body["active_profile"]) == {"id", "name", "provider", "model"}


def test_hot_switch_from_another_process_within_one_second(hermit, base_env, upstream):
    client = sdk(hermit)
    result = run_cli(base_env, "profiles", "add", "--name", "second", "--provider", "openai-compatible",
                     "--base-url", upstream.base_url, "--model", "fake-model-b", "--skip-test")
    assert result.returncode == 0, result.stderr
    import time

    result = run_cli(base_env, "profiles", "activate", "second", "--skip-test")
    assert result.returncode == 0, result.stderr
    switched_at = time.monotonic()
    assert wait_for(lambda: httpx.get(hermit.url + "/health").json()["active_profile"]["name"] == "second", 2)
    assert time.monotonic() - switched_at < 1.0
    client.chat.completions.create(model="x", messages=[{"role": "user", "content": "after"}])
    assert hermit.rows()[-1]["upstream_model"] == "fake-model-b"
    assert hermit.rows()[-1]["profile_name"] == "second"


def test_in_flight_stream_finishes_on_the_profile_it_started_with(make_server, upstream, base_env):
    srv = make_server(HERMIT_DEFAULT_BASE_URL=upstream.url("slowstream-80+chunks-10"))
    srv.services.profiles.add({"name": "other", "provider": "openai", "base_url": upstream.base_url, "model": "fake-model-b"})
    stream = sdk(srv).chat.completions.create(model="x", messages=[{"role": "user", "content": "x"}], stream=True)
    first = next(iter(stream))
    srv.services.profiles.activate("other", "cli")
    assert wait_for(lambda: srv.server.forwarder.target.profile_name == "other", 2)
    rest = list(stream)
    assert first and rest
    row = srv.rows()[0]
    assert row["profile_name"] == "default" and row["upstream_model"] == "fake-model-a"
    assert row["status_code"] == 200


def test_an_upstream_echoing_the_key_never_puts_it_in_the_ledger_or_log(make_server, base_env, tmp_path, caplog):
    import http.server
    import threading

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["content-length"]))
            body = json.dumps({"error": {"message": f"Incorrect API key provided: {self.headers['authorization'][7:]}",
                                         "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}).encode()
            self.send_response(401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    try:
        srv = make_server(HERMIT_DEFAULT_BASE_URL=f"http://127.0.0.1:{echo.server_address[1]}/v1")
        with caplog.at_level("INFO"):
            response = httpx.post(srv.v1 + "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert response.status_code == 401  # the upstream's own answer is passed through as it is
        (row,) = srv.rows()
        key = base_env["HERMIT_DEFAULT_API_KEY"]
        assert key not in row["error"] and "sk-…0001" in row["error"]
        assert key not in caplog.text
        for part in tmp_path.glob("hermit.db*"):  # the database and its write-ahead log
            assert key.encode() not in part.read_bytes(), part
    finally:
        echo.shutdown()


def test_profile_embedding_model_overrides_the_clients(make_server, upstream):
    srv = make_server()
    srv.services.profiles.update("default", {"embedding_model": "text-embedding-3-large"})
    assert wait_for(lambda: srv.server.forwarder.target.embedding_model == "text-embedding-3-large", 3)
    upstream.clear()
    sdk(srv).embeddings.create(model="whatever-the-client-says", input="hello")
    assert upstream.requests[-1].json["model"] == "text-embedding-3-large"
    (row,) = srv.rows()
    assert (row["upstream_model"], row["client_model"]) == ("text-embedding-3-large", "whatever-the-client-says")


def test_strict_providers_get_no_unknown_client_fields(make_server, upstream):
    srv = make_server()
    srv.services.profiles.update("default", {"provider": "gemini"})  # Gemini 400s on unknown fields
    assert wait_for(lambda: srv.server.forwarder.target.provider.name == "google-gemini", 3)
    upstream.clear()
    httpx.post(srv.v1 + "/chat/completions", json={
        "model": "m", "messages": [{"role": "user", "content": "x"}], "top_k": 5, "temperature": 0.2,
    })
    sent = upstream.requests[-1].json
    assert "top_k" not in sent and sent["temperature"] == 0.2


def test_request_id_header_names_the_ledger_row(hermit):
    raw = sdk(hermit).chat.completions.with_raw_response.create(model="x", messages=[{"role": "user", "content": "hi"}])
    (row,) = hermit.rows()
    assert raw.headers["x-hermit-request-id"] == row["request_id"]
