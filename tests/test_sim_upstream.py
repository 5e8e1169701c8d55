"""Focused tests of the fake upstream (hermit.sim.upstream) used by the rest of the suite."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import FIXTURES as SHARED
from hermit.sim.upstream import FakeUpstreamThread

CUT = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"choices":[{"delta":{"content":"b"}}'
MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there friend"}]
PROMPT = 2 + 3 + 3 + 3  # words + 3 per message


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("streams")
    if SHARED.is_dir():
        for f in SHARED.iterdir():
            if f.suffix in (".sse", ".json"):
                shutil.copy(f, d / f.name)
    (d / "synthetic_cut.sse").write_bytes(CUT * 5)  # ends mid-event
    (d / "synthetic_body.json").write_bytes(b'{"id": "x",\n "usage": null}\n')
    return d


@pytest.fixture(scope="module")
def up(fixtures: Path) -> Iterator[FakeUpstreamThread]:
    with FakeUpstreamThread(fixtures) as server:
        yield server


@pytest.fixture
def client(up: FakeUpstreamThread) -> Iterator[httpx.Client]:
    up.clear()
    with httpx.Client(timeout=5) as c:
        yield c


def events(text: str) -> list[Any]:
    out: list[Any] = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def raw(up: FakeUpstreamThread, payload: bytes, timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", up.port), timeout=timeout) as s:
        s.sendall(payload)
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
        return b"".join(chunks)


def test_ok_non_stream_usage_and_recording(up: FakeUpstreamThread, client: httpx.Client) -> None:
    r = client.post(f"{up.base_url}/chat/completions", json={"model": "gpt-x", "messages": MSGS},
                    headers={"X-Trace": "t1"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "gpt-x"
    content = body["choices"][0]["message"]["content"]
    assert content.startswith("Hello from the fake upstream")
    assert body["usage"] == {"prompt_tokens": PROMPT, "completion_tokens": len(content.split()),
                             "total_tokens": PROMPT + len(content.split())}
    rec = up.requests[-1]
    assert (rec.method, rec.path, rec.headers["x-trace"]) == ("POST", "/v1/chat/completions", "t1")
    assert rec.json["messages"] == MSGS and json.loads(rec.body) == rec.json


def test_usage_detail_scenarios(up: FakeUpstreamThread, client: httpx.Client) -> None:
    r = client.post(f"{up.base_url}/chat/completions",
                    json={"model": "fake-chunks-3+cached-4+reasoning-5", "messages": MSGS})
    u = r.json()["usage"]
    assert u["completion_tokens"] == 3 + 5 and u["total_tokens"] == PROMPT + 8
    assert u["prompt_tokens_details"] == {"cached_tokens": 4}
    assert u["completion_tokens_details"] == {"reasoning_tokens": 5}
    r = client.post(f"{up.url('nousage')}/chat/completions", json={"model": "m", "messages": MSGS})
    assert "usage" not in r.json()


def test_stream_without_include_usage(up: FakeUpstreamThread, client: httpx.Client) -> None:
    r = client.post(f"{up.url('chunks-5')}/chat/completions", json={"model": "m", "stream": True, "messages": MSGS})
    assert r.headers["content-type"] == "text/event-stream" and r.headers["transfer-encoding"] == "chunked"
    evs = events(r.text)
    assert evs[-1] == "[DONE]"
    chunks = evs[:-1]
    assert all(isinstance(c, dict) and "usage" not in c for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len([c for c in chunks if c["choices"][0]["delta"].get("content")]) == 5
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_include_usage(up: FakeUpstreamThread, client: httpx.Client) -> None:
    req = {"model": "fake-chunks-4", "stream": True, "stream_options": {"include_usage": True}, "messages": MSGS}
    evs = events(client.post(f"{up.base_url}/chat/completions", json=req).text)
    assert evs[-1] == "[DONE]"
    *chunks, last = evs[:-1]
    assert all(c["usage"] is None and c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert last["choices"] == [] and last["usage"] == {"prompt_tokens": PROMPT, "completion_tokens": 4,
                                                       "total_tokens": PROMPT + 4}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    r = client.post(f"{up.base_url}/chat/completions", json={**req, "stream": False})
    assert r.json()["choices"][0]["message"]["content"] == text


def test_stream_usage_variants(up: FakeUpstreamThread, client: httpx.Client) -> None:
    req = {"model": "m", "stream": True, "stream_options": {"include_usage": True}, "messages": MSGS}
    fin = events(client.post(f"{up.url('usagefinish+chunks-2')}/chat/completions", json=req).text)[:-1]
    assert fin[-1]["choices"][0]["finish_reason"] == "stop" and fin[-1]["usage"]["completion_tokens"] == 2
    cum = events(client.post(f"{up.url('cumulative+chunks-3')}/chat/completions", json=req).text)[:-1]
    assert [c["usage"]["completion_tokens"] for c in cum[1:4]] == [1, 2, 3]
    none = events(client.post(f"{up.url('nousage')}/chat/completions", json=req).text)[:-1]
    assert all("usage" not in c for c in none)


def test_events_arrive_one_by_one(up: FakeUpstreamThread, client: httpx.Client) -> None:
    t0 = time.monotonic()
    with client.stream("POST", f"{up.url('slowstream-60+chunks-2')}/chat/completions",
                       json={"model": "m", "stream": True}) as r:
        it = r.iter_raw()
        first = next(it)
        t_first = time.monotonic() - t0
        rest = b"".join(it)
    assert first.startswith(b"data: ") and first.count(b"data: ") == 1
    assert t_first < 0.2 and time.monotonic() - t0 >= 0.25 and rest.endswith(b"data: [DONE]\n\n")


def test_fixture_replay_is_byte_exact(up: FakeUpstreamThread, client: httpx.Client, fixtures: Path) -> None:
    files = sorted(fixtures.glob("*.sse")) + sorted(fixtures.glob("*.json"))
    assert len(files) >= 2
    for f in files:
        r = client.post(f"{up.url('fixture-' + f.stem)}/chat/completions", json={"model": "m"})
        ctype = "text/event-stream" if f.suffix == ".sse" else "application/json"
        assert (r.status_code, r.headers["content-type"]) == (200, ctype), f.name
        assert r.content == f.read_bytes(), f.name
    r = client.post(f"{up.url('fixture-nope')}/chat/completions", json={"model": "m"})
    assert r.status_code == 500 and "nope" in r.json()["error"]["message"]


def test_errors_garbage_and_reject(up: FakeUpstreamThread, client: httpx.Client) -> None:
    r = client.post(f"{up.url('error-503')}/chat/completions", json={"model": "m"})
    err = r.json()["error"]
    assert r.status_code == 503 and "503" in err["message"] and set(err) == {"message", "type", "param", "code"}
    assert client.post(f"{up.base_url}/chat/completions", json={"model": "fake-error-429"}).status_code == 429
    r = client.post(f"{up.url('garbage')}/chat/completions", json={"model": "m", "stream": True})
    assert r.status_code == 200 and r.headers["content-type"] == "text/html" and r.text == "<html>oops</html>"
    url = f"{up.url('rejectstreamoptions')}/chat/completions"
    r = client.post(url, json={"model": "m", "stream": True, "stream_options": {"include_usage": True}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "stream_options"
    assert client.post(url, json={"model": "m", "stream": True}).text.endswith("data: [DONE]\n\n")
    r = client.get(f"{up.base_url}/nope")
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    assert client.post(f"{up.url('bogus-token')}/chat/completions", json={}).status_code == 400


def test_models_and_embeddings(up: FakeUpstreamThread, client: httpx.Client) -> None:
    assert [m["id"] for m in client.get(f"{up.base_url}/models").json()["data"]] == ["fake-model-a", "fake-model-b"]
    body = client.post(f"{up.base_url}/embeddings", json={"model": "e", "input": ["one two", "three"]}).json()
    assert [d["index"] for d in body["data"]] == [0, 1] and len(body["data"][0]["embedding"]) == 8
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3} and body["model"] == "e"


def test_slow_hang_and_close(up: FakeUpstreamThread, client: httpx.Client) -> None:
    t0 = time.monotonic()
    assert client.post(f"{up.url('slow-0.3')}/chat/completions", json={"model": "m"}).status_code == 200
    assert time.monotonic() - t0 >= 0.3
    with pytest.raises(httpx.ReadTimeout):
        client.post(f"{up.url('hang')}/chat/completions", json={"model": "m"}, timeout=0.2)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{up.url('close')}/chat/completions", json={"model": "m"})
    assert client.get(f"{up.base_url}/models").status_code == 200


def test_chunked_request_body(up: FakeUpstreamThread, client: httpx.Client) -> None:
    payload = json.dumps({"model": "gpt-x", "messages": MSGS}).encode()
    parts = iter([payload[:10], payload[10:30], payload[30:]])
    r = client.post(f"{up.base_url}/chat/completions", content=parts, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == PROMPT
    rec = up.requests[-1]
    assert rec.headers["transfer-encoding"] == "chunked" and rec.body == payload


def test_keep_alive_reuses_one_connection(up: FakeUpstreamThread, client: httpx.Client) -> None:
    before = up.connections
    for i in range(5):
        stream = i % 2 == 1
        r = client.post(f"{up.base_url}/chat/completions", json={"model": "m", "stream": stream, "messages": MSGS})
        assert r.status_code == 200
    client.get(f"{up.url('error-500')}/models")
    assert up.connections - before == 1
    two = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n"
    resp = raw(up, two)  # the second request is pipelined behind the first
    assert resp.count(b"HTTP/1.1 200 OK") == 2 and resp.endswith(b"}")


def test_malformed_requests_keep_server_alive(up: FakeUpstreamThread, client: httpx.Client) -> None:
    assert raw(up, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(up, b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: x\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(up, b"POST /v1/embeddings HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").startswith(
        b"HTTP/1.1 400 ")
    r = client.post(f"{up.base_url}/chat/completions", content=b"{not json",
                    headers={"content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()
    assert client.post(f"{up.base_url}/chat/completions", json={"model": "m"}).status_code == 200
