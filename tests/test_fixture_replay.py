"""End to end: each shared upstream fixture replayed byte-exactly through a real Hermit to the official openai SDK.

What is checked is what a user would check: the text their client received, and the one ledger row the request
left (token counts normalised to OpenAI semantics, estimated when the upstream gave none, errors, upstream cost).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import openai
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("HERMIT_FIXTURES_DIR") or REPO.parent / "shared" / "fixtures" / "streams")
NAMES = sorted(p.name[: -len(".expected.json")] for p in FIXTURES.glob("*.expected.json"))
COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Answer in one short sentence, please."},
]


def fixture(name: str) -> tuple[dict, Path]:
    exp = json.loads((FIXTURES / f"{name}.expected.json").read_text(encoding="utf-8"))
    for ext in (".sse", ".json"):
        body = FIXTURES / (name + ext)
        if body.is_file():
            return exp, body
    pytest.fail(f"{name}.expected.json has neither {name}.sse nor {name}.json beside it in {FIXTURES}")


def usage_only_fixtures() -> list[str]:
    """Streams whose upstream sends a usage chunk without choices (what include_usage asks for)."""
    out = []
    for name in NAMES:
        path = FIXTURES / f"{name}.sse"
        if not path.is_file():
            continue
        for block in path.read_bytes().replace(b"\r\n", b"\n").split(b"\n\n"):
            try:
                payload = json.loads(block[6:]) if block.startswith(b"data: {") else None
            except ValueError:  # the cut-off stream's unterminated last event
                payload = None
            if isinstance(payload, dict):
                if not payload.get("choices") and isinstance(payload.get("usage"), dict):
                    out.append(name)
                    break
    return out


def sdk(srv) -> openai.OpenAI:
    # No retries: every request must leave exactly one ledger row.
    return openai.OpenAI(base_url=srv.v1, api_key="sk-client-side-anything", max_retries=0, timeout=10)


def stream_chat(client: openai.OpenAI, include_usage: bool | None) -> tuple[list, Exception | None]:
    kwargs = {} if include_usage is None else {"stream_options": {"include_usage": include_usage}}
    chunks: list = []
    try:
        for chunk in client.chat.completions.create(model="any-model", messages=MESSAGES, stream=True, **kwargs):
            chunks.append(chunk)
    except openai.APIError as exc:  # an error event mid-stream, or a cut-off body
        return chunks, exc
    return chunks, None


def text_of(chunks: list) -> str:
    """Concatenated choices[0].delta.content (Azure sends a choice without a delta: tolerate it)."""
    return "".join((getattr(c.choices[0].delta, "content", None) or "") for c in chunks if c.choices)


def rows_after(srv, count: int, timeout: float = 5.0) -> list[dict]:
    """The ledger once it holds `count` rows. A stream's row is written as its relay ends, which can be a
    moment after the client has read [DONE], so poll briefly; then check that no extra row appeared."""
    deadline = time.monotonic() + timeout
    rows = srv.rows()
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.01)
        rows = srv.rows()
    assert len(rows) == count, rows
    return rows


def only_row(srv) -> dict:
    return rows_after(srv, 1)[0]


def check_row(row: dict, exp: dict, stream: bool) -> None:
    want = exp["expected"]
    assert row["endpoint"] == "chat"
    assert row["stream"] is stream
    assert row["status_code"] == 200
    if want["usage_source"] == "estimated":
        assert row["usage_source"] == "estimated"
        assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 and row["total_tokens"] > 0
        assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
        assert row["completion_tokens"] >= exp["upstream_extra"]["estimate_bounds"]["completion_tokens_min"]
    else:
        got = {k: row[k] for k in (*COUNTS, "usage_source")}
        assert got == {k: want[k] for k in (*COUNTS, "usage_source")}
    extra = exp.get("upstream_extra") or {}
    upstream_usage = exp.get("upstream_usage") or {}
    if "cost" in extra or "cost" in upstream_usage:
        assert row["upstream_cost_usd"] == pytest.approx(extra.get("cost", upstream_usage.get("cost")))
    elif "cost_in_usd_ticks" in extra or "cost_in_usd_ticks" in upstream_usage:
        ticks = extra.get("cost_in_usd_ticks", upstream_usage.get("cost_in_usd_ticks"))
        assert row["upstream_cost_usd"] == pytest.approx(ticks / 1e10)
    else:
        assert row["upstream_cost_usd"] is None
    if "cache_write_tokens" in extra:
        assert row["cache_write_tokens"] == extra["cache_write_tokens"]


USAGE_ONLY = usage_only_fixtures()


def test_fixture_folder_is_not_empty():
    assert NAMES, f"no *.expected.json fixtures in {FIXTURES} (set HERMIT_FIXTURES_DIR?)"


@pytest.mark.parametrize("name", NAMES or [pytest.param(None, id="NO-FIXTURES")])
def test_fixture_replays_through_hermit(name, upstream, make_server):
    if name is None:
        pytest.fail(f"no *.expected.json fixtures in {FIXTURES}")
    exp, body = fixture(name)
    srv = make_server(HERMIT_DEFAULT_BASE_URL=upstream.url("fixture-" + name))
    client = sdk(srv)
    errored = bool((exp.get("upstream_extra") or {}).get("error"))  # an error event inside a 200 stream
    cut = not exp.get("ends_with_done", True) and not errored

    if body.suffix == ".json":
        reply = client.chat.completions.create(model="any-model", messages=MESSAGES)
        assert reply.choices[0].message.content == exp["content"]
        row = only_row(srv)
        check_row(row, exp, stream=False)
        assert row["error"] is None
        return

    chunks, error = stream_chat(client, bool(exp["request_had_include_usage"]))
    assert text_of(chunks) == exp["content"]
    if errored:
        assert isinstance(error, openai.APIError), "the upstream's error event must reach the client"
        assert "Upstream connection reset by provider" in str(error)
    elif not cut:
        assert error is None, error
    row = only_row(srv)
    check_row(row, exp, stream=True)
    if errored:
        assert row["error"] and "Upstream connection reset by provider" in row["error"]
    elif cut:
        assert row["error"], "a stream cut inside an event is an incomplete request"
    else:
        assert row["error"] is None
    usage_chunks = [c for c in chunks if c.usage is not None and not c.choices]
    if not exp["request_had_include_usage"]:
        assert usage_chunks == []
    elif name in USAGE_ONLY:
        assert len(usage_chunks) == 1
        assert usage_chunks[0].usage.prompt_tokens == exp["upstream_usage"]["prompt_tokens"]


@pytest.mark.parametrize("name", USAGE_ONLY or [pytest.param(None, id="NO-FIXTURES")])
def test_usage_chunk_reaches_only_clients_that_asked(name, upstream, make_server):
    if name is None:
        pytest.fail(f"no stream fixture with a usage-only chunk in {FIXTURES}")
    exp, _ = fixture(name)
    srv = make_server(HERMIT_DEFAULT_BASE_URL=upstream.url("fixture-" + name))
    client = sdk(srv)

    # Not asked (no stream_options at all): Hermit still asks upstream, records, and hides the chunk.
    chunks, error = stream_chat(client, None)
    assert error is None
    assert text_of(chunks) == exp["content"]
    assert not [c for c in chunks if c.usage is not None and not c.choices]
    check_row(only_row(srv), exp, stream=True)
    recorded = upstream.requests[-1].json
    assert recorded["stream_options"]["include_usage"] is True

    # Asked: the SDK sees the upstream's usage chunk, numbers as the upstream sent them.
    chunks, error = stream_chat(client, True)
    assert error is None
    assert text_of(chunks) == exp["content"]
    usage_chunks = [c for c in chunks if c.usage is not None and not c.choices]
    assert len(usage_chunks) == 1
    raw = exp["upstream_usage"]
    got = usage_chunks[0].usage
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens) == (
        raw["prompt_tokens"], raw["completion_tokens"], raw["total_tokens"],
    )
    check_row(rows_after(srv, 2)[1], exp, stream=True)


# ---------------------------------------------------------------------------------------------
# Upstream behaviours the byte-exact fixture server cannot produce (a pause before the end of the
# body, a compressed stream). Both fail on hermit/proxy/forward.py as of this writing; the fix is
# proposed separately (forward.py is not owned here), so they are expected failures until it lands.

SAMPLE_STREAM = "openai_include_usage"


def _raw_upstream(body: bytes, *, gzip_it: bool = False, pause_before_end: float = 0.0):
    """A one-connection-per-request HTTP/1.1 upstream on loopback answering every POST with `body` as SSE."""
    import gzip
    import socket
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    payload = gzip.compress(body) if gzip_it else body
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
    if gzip_it:
        head += b"content-encoding: gzip\r\n"

    def handle(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head_bytes, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head_bytes.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(rest) < length:
                rest += conn.recv(65536)
            conn.sendall(head + b"\r\n" + b"%x\r\n%b\r\n" % (len(payload), payload))
            time.sleep(pause_before_end)
            try:
                conn.sendall(b"0\r\n\r\n")
                time.sleep(0.2)
            except OSError:
                pass

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def test_done_then_slow_end_of_body_is_a_complete_request(make_server):
    exp, body = fixture(SAMPLE_STREAM)
    sock, url = _raw_upstream(body.read_bytes(), pause_before_end=0.5)
    try:
        srv = make_server(HERMIT_DEFAULT_BASE_URL=url)
        chunks, error = stream_chat(sdk(srv), True)
        assert error is None and text_of(chunks) == exp["content"]
        row = only_row(srv)
        assert (row["status_code"], row["error"]) == (200, None)  # not 499 "client disconnected"
        check_row(row, exp, stream=True)
    finally:
        sock.close()


def test_compressed_stream_is_decoded_for_client_and_ledger(make_server):
    exp, body = fixture(SAMPLE_STREAM)
    sock, url = _raw_upstream(body.read_bytes(), gzip_it=True)
    try:
        srv = make_server(HERMIT_DEFAULT_BASE_URL=url)
        chunks, error = stream_chat(sdk(srv), True)
        assert error is None and text_of(chunks) == exp["content"]
        check_row(only_row(srv), exp, stream=True)
    finally:
        sock.close()
