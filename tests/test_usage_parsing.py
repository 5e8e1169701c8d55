"""Unit tests of hermit.core.usage: SSE framing, usage normalisation and estimates, against the shared fixtures."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import pytest

from hermit.core.usage import (
    SSEParser,
    StreamAccountant,
    Usage,
    body_usage,
    error_text_of,
    estimate_prompt_tokens,
    estimate_text_tokens,
    estimated_usage,
    has_counts,
    normalize_usage,
)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("HERMIT_FIXTURES_DIR") or REPO.parent / "shared" / "fixtures" / "streams")
EXPECTED = sorted(FIXTURES.glob("*.expected.json"))
SSE_FILES = sorted(FIXTURES.glob("*.sse"))
COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")
BODY = {"model": "m", "messages": [{"role": "user", "content": "Tell me something short, please."}]}


def _name(path: Path) -> str:
    return path.name[: -len(".expected.json")] if path.name.endswith(".expected.json") else path.stem


def _expected(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.expected.json").read_text(encoding="utf-8"))


def _ids(paths: list[Path]) -> list[str]:
    return [_name(p) for p in paths]


def _or_fail(paths: list[Path]) -> list:
    """Parametrize values; an empty fixture folder becomes one loudly failing case, not a silent skip."""
    return paths or [pytest.param(None, id="NO-FIXTURES")]


def _need(path: Path | None) -> Path:
    if path is None:
        pytest.fail(f"no fixtures found in {FIXTURES} (set HERMIT_FIXTURES_DIR?)")
    return path


def feed(data: bytes, sizes: list[int] | None = None) -> tuple[list, SSEParser]:
    """Feed `data` in pieces of the given sizes (the rest in one piece); returns (events, parser)."""
    parser = SSEParser()
    events = []
    pos = 0
    for size in sizes or []:
        events += parser.feed(data[pos : pos + size])
        pos += size
    events += parser.feed(data[pos:])
    return events, parser


def random_sizes(n: int, rng: random.Random, most: int) -> list[int]:
    sizes, total = [], 0
    while total < n:
        size = rng.randint(1, most)
        sizes.append(size)
        total += size
    return sizes


def reference_events(data: bytes) -> list[bytes | None]:
    """A deliberately naive WHATWG event-stream reader over the whole body (comment-only events give None)."""
    *complete, _unterminated = re.split(rb"\r\n|\r|\n", data)
    out: list[bytes | None] = []
    current: bytes | None = None
    seen = False
    for line in complete:
        if not line:
            if seen:
                out.append(current)
            current, seen = None, False
            continue
        seen = True
        if line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            current = value if current is None else current + b"\n" + value
    return out


def account(data: bytes, strip_usage_only: bool = False) -> tuple[StreamAccountant, list[bool], SSEParser]:
    events, parser = feed(data)
    acc = StreamAccountant(strip_usage_only=strip_usage_only)
    relayed = [acc.observe(e) for e in events]
    return acc, relayed, parser


def as_dict(usage: Usage) -> dict:
    return {k: getattr(usage, k) for k in COUNTS}


def test_fixture_folder_has_fixtures():
    assert EXPECTED, f"no *.expected.json in {FIXTURES}"
    assert SSE_FILES, f"no *.sse in {FIXTURES}"
    for path in EXPECTED:
        name = _name(path)
        assert (FIXTURES / f"{name}.sse").is_file() or (FIXTURES / f"{name}.json").is_file(), name


# ---------------------------------------------------------------------------------------------
# Framing


@pytest.mark.parametrize("path", _or_fail(SSE_FILES), ids=_ids(SSE_FILES) or None)
def test_fixture_framing_does_not_depend_on_how_bytes_arrive(path):
    data = _need(path).read_bytes()
    whole, parser = feed(data)
    datas = [e.data for e in whole]
    assert datas == reference_events(data)
    # Relaying the raw bytes reproduces the upstream body exactly.
    assert b"".join(e.raw for e in whole) + parser.pending() == data
    has_cr = b"\r" in data
    rng = random.Random(f"hermit-{path.name}")
    splits = [[1] * len(data)] + [random_sizes(len(data), rng, most) for most in (3, 7, 16, 64, 200) for _ in range(4)]
    for sizes in splits:
        events, split_parser = feed(data, sizes)
        assert [e.data for e in events] == datas, sizes[:10]
        assert b"".join(e.raw for e in events) + split_parser.pending() == data
        assert split_parser.pending().strip() == parser.pending().strip()
        if not has_cr:  # with CRLF a split between CR and LF moves the LF into the next event's raw
            assert [e.raw for e in events] == [e.raw for e in whole]


def _stream(eol: bytes) -> bytes:
    lines = [
        b": keep-alive", b"",
        b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}', b"",
        b"event: message", b"id: 7", b"retry: 1000", b"data: line one", b"data:line two", b"data", b"",
        b": ping - 2025-10-15 02:10:16", b"",
        b"data: [DONE]", b"",
    ]
    return b"".join(line + eol for line in lines)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_ending_frames_the_same_events(eol):
    data = _stream(eol)
    want = [None, b'{"choices":[{"index":0,"delta":{"content":"Hi"}}]}', b"line one\nline two\n", None, b"[DONE]"]
    for sizes in (None, [1] * len(data), random_sizes(len(data), random.Random(3), 5)):
        events, parser = feed(data, sizes)
        assert [e.data for e in events] == want
        # Split between the final CR and LF, the LF waits alone: nothing of an event is pending.
        assert parser.pending().strip() == b""
        assert b"".join(e.raw for e in events) + parser.pending() == data


def test_cr_framed_stream_delivers_its_last_event_without_waiting_for_more_bytes():
    # A CR at the end of a read ends the line (it may not be half of a CRLF); [DONE] must not be held back.
    events, parser = feed(b"data: a\r\rdata: [DONE]\r\r")
    assert [e.data for e in events] == [b"a", b"[DONE]"]
    assert parser.pending() == b""


def test_crlf_split_between_cr_and_lf_is_one_line_ending():
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\ndata: b\r") == []
    out = parser.feed(b"\n\r")
    assert [e.data for e in out] == [b"a\nb"]  # the LF after a CR never makes a blank line
    out = parser.feed(b"\ndata: c\r\n\r\n")
    assert [e.data for e in out] == [b"c"]
    assert parser.pending() == b""


def test_mixed_line_endings_in_one_stream():
    data = b"data: a\r\n\ndata: b\n\r\n: ping\r\rdata: c\r\n\r"
    events, parser = feed(data)
    assert [e.data for e in events] == [b"a", b"b", None, b"c"]
    assert parser.pending() == b""


def test_comments_are_never_data():
    data = b": OPENROUTER PROCESSING\n\n:\n\ndata: x\n: inside an event\ndata: y\n\n"
    events, _ = feed(data)
    assert [e.data for e in events] == [None, None, b"x\ny"]
    acc = StreamAccountant(strip_usage_only=True)
    assert all(acc.observe(e) for e in events)  # comments are relayed, never JSON-parsed
    assert acc.events == 1 and acc.error is None


def test_stray_blank_lines_are_kept_for_the_relay_but_make_no_event():
    data = b"\n\r\n\ndata: a\n\n\n\ndata: b\n\n"
    events, parser = feed(data)
    assert [e.data for e in events] == [b"a", b"b"]
    assert b"".join(e.raw for e in events) + parser.pending() == data


def test_trailing_unterminated_event_is_discarded():
    for tail in (b"data: b", b"data: b\n", b"data: b\r\n", b"data: b\r"):
        events, parser = feed(b"data: a\n\n" + tail)
        assert [e.data for e in events] == [b"a"], tail
        assert parser.pending() == tail


def test_cut_off_fixture_keeps_the_partial_event_pending():
    data = (FIXTURES / "stream_cut_off_midway.sse").read_bytes()
    acc, _, parser = account(data)
    assert parser.pending().startswith(b"data: ")
    assert parser.pending().endswith(b'"content":" fi')
    assert acc.content == _expected("stream_cut_off_midway")["content"]
    assert acc.finish_reason is None and not acc.saw_done and acc.usage_raw is None


def test_empty_feed_is_harmless():
    parser = SSEParser()
    assert parser.feed(b"") == []
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"") == []
    assert [e.data for e in parser.feed(b"\n\n")] == [b"a"]


# ---------------------------------------------------------------------------------------------
# Usage per fixture


@pytest.mark.parametrize("path", _or_fail(EXPECTED), ids=_ids(EXPECTED) or None)
def test_normalize_usage_matches_fixture_expectation(path):
    exp = json.loads(_need(path).read_text(encoding="utf-8"))
    raw = exp["upstream_usage"]
    if exp["expected"]["usage_source"] == "estimated":
        assert raw is None or not has_counts(raw)
        return
    assert has_counts(raw)
    usage = normalize_usage(raw)
    assert as_dict(usage) == {k: exp["expected"][k] for k in COUNTS}
    assert usage.source == "upstream"
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if usage.cached_tokens is not None:
        assert usage.cached_tokens <= usage.prompt_tokens
    if usage.reasoning_tokens is not None:
        assert usage.reasoning_tokens <= usage.completion_tokens
    extra = exp.get("upstream_extra") or {}
    if "cache_write_tokens" in extra:
        assert usage.cache_write_tokens == extra["cache_write_tokens"]
    if "cost" in extra:
        assert usage.upstream_cost_usd == pytest.approx(extra["cost"])
    elif "cost_in_usd_ticks" in extra:
        assert usage.upstream_cost_usd == pytest.approx(extra["cost_in_usd_ticks"] / 1e10)
    else:
        assert usage.upstream_cost_usd is None


@pytest.mark.parametrize("path", _or_fail(EXPECTED), ids=_ids(EXPECTED) or None)
def test_fixture_body_accounts_like_the_fixture_says(path):
    name = _name(_need(path))
    exp = _expected(name)
    want = exp["expected"]
    sse = FIXTURES / f"{name}.sse"
    if sse.is_file():
        acc, _, parser = account(sse.read_bytes())
        assert acc.content == exp["content"]
        assert acc.saw_done is exp.get("ends_with_done", True)
        usage = acc.usage(BODY)
        if exp["upstream_usage"] is not None:
            assert acc.usage_raw == exp["upstream_usage"]  # the last non-null usage, verbatim
        if name == "openrouter_error_event_midstream":
            assert acc.error and "Upstream connection reset by provider" in acc.error
            assert acc.finish_reason == "error"
        else:
            assert acc.error is None
    else:
        payload = json.loads((FIXTURES / f"{name}.json").read_bytes())
        assert payload["choices"][0]["message"]["content"] == exp["content"]
        usage = body_usage(payload, BODY)
    if want["usage_source"] == "estimated":
        assert usage.source == "estimated"
        assert min(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) > 0
        assert usage.completion_tokens >= exp["upstream_extra"]["estimate_bounds"]["completion_tokens_min"]
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    else:
        assert usage.source == "upstream"
        assert as_dict(usage) == {k: want[k] for k in COUNTS}


def test_last_usage_wins_and_is_never_summed():
    data = (FIXTURES / "gemini_openai_compat_cumulative_usage_every_chunk.sse").read_bytes()
    acc, _, _ = account(data)
    usage = acc.usage(BODY)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 93, 105)
    data = (FIXTURES / "vllm_continuous_usage_stats.sse").read_bytes()
    acc, _, _ = account(data)
    assert acc.usage(BODY).completion_tokens == 7  # first-wins would record 0


def test_zero_placeholder_after_real_usage_does_not_erase_it():
    stream = (
        b'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n'
        b'data: {"choices":[],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}\n\n'
        b"data: [DONE]\n\n"
    )
    acc, relayed, _ = account(stream, strip_usage_only=True)
    usage = acc.usage(BODY)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.source) == (5, 2, "upstream")
    assert relayed == [True, False, True]  # the placeholder usage-only chunk is still hidden


def test_has_counts_ignores_zero_placeholders():
    assert not has_counts(None)
    assert not has_counts([])
    assert not has_counts({})
    assert not has_counts({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    assert not has_counts({"prompt_tokens": None, "completion_tokens": None})
    assert not has_counts({"prompt_tokens": True, "completion_tokens": True})
    assert not has_counts({"prompt_tokens": -1})
    assert has_counts({"prompt_tokens": 31, "total_tokens": 31, "completion_tokens": 0})
    assert has_counts({"input_tokens": 3, "output_tokens": 0})
    assert has_counts({"total_tokens": 4.0})


def test_normalize_reads_other_shapes():
    usage = normalize_usage({"input_tokens": 10, "output_tokens": 4, "input_tokens_details": {"cached_tokens": 6}})
    assert as_dict(usage) == {
        "prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14, "cached_tokens": 6, "reasoning_tokens": None,
    }
    usage = normalize_usage({"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110, "prompt_cache_hit_tokens": 64})
    assert usage.cached_tokens == 64 and usage.prompt_tokens == 100
    # Anthropic-style reads with no prompt_tokens_details: cached falls back to cache_read_input_tokens.
    usage = normalize_usage({"prompt_tokens": 3, "completion_tokens": 1, "cache_read_input_tokens": 50})
    assert (usage.prompt_tokens, usage.cached_tokens, usage.total_tokens) == (53, 50, 54)


# ---------------------------------------------------------------------------------------------
# Estimates


@pytest.mark.parametrize("text", ["a", " ", "\n", "ok", "我", "🙂", "Hello, world!", "x" * 1000, "mot " * 50])
def test_text_estimate_is_never_zero_for_non_empty_text(text):
    assert estimate_text_tokens(text) >= 1
    assert estimated_usage(BODY, text).completion_tokens >= 1


def test_estimates_are_positive_and_marked():
    assert estimate_text_tokens("") == 0
    assert estimate_prompt_tokens(BODY) > 0
    assert estimate_prompt_tokens({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}) > 0
    assert estimate_prompt_tokens({"input": "embed me"}) > 0
    assert estimate_prompt_tokens({"input": [[1, 2, 3]]}) == 3
    usage = estimated_usage(BODY, "Sure! The answer is 42.", 7)
    assert usage.source == "estimated"
    assert usage.completion_tokens >= 7
    assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.cached_tokens is None and usage.reasoning_tokens is None


def test_estimate_counts_reasoning_and_tool_arguments_of_a_cut_stream():
    stream = (
        b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"'
        + b"think " * 40
        + b'"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"lookup","arguments":"{\\"q\\": \\"weather in Paris\\"}"}}]}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"content":"Hm'
    )
    acc, _, parser = account(stream)
    assert acc.content == ""  # reasoning and tool arguments are not content
    assert parser.pending()
    usage = acc.usage(BODY)
    assert usage.source == "estimated"
    assert usage.completion_tokens >= 40


# ---------------------------------------------------------------------------------------------
# What the accountant relays


def _usage_only_indexes(data: bytes) -> list[int]:
    out = []
    for i, item in enumerate(reference_events(data)):
        if item is None or item == b"[DONE]":
            continue
        payload = json.loads(item)
        if not payload.get("choices") and isinstance(payload.get("usage"), dict):
            out.append(i)
    return out


@pytest.mark.parametrize("path", _or_fail(SSE_FILES), ids=_ids(SSE_FILES) or None)
def test_usage_only_chunk_is_dropped_only_when_the_client_did_not_ask(path):
    data = _need(path).read_bytes()
    hidden = _usage_only_indexes(data)
    acc, relayed, _ = account(data, strip_usage_only=True)
    assert [i for i, keep in enumerate(relayed) if not keep] == hidden
    asked, relayed_all, _ = account(data, strip_usage_only=False)
    assert all(relayed_all)
    assert acc.usage_raw == asked.usage_raw  # dropped or not, the numbers are accounted


def test_azure_prompt_filter_chunk_is_relayed():
    data = (FIXTURES / "azure_openai_prompt_filter_first.sse").read_bytes()
    _, relayed, _ = account(data, strip_usage_only=True)
    assert relayed[0] is True  # choices == [] but no usage: not a usage chunk
    assert relayed.count(False) == 1


def test_error_text_of_reads_common_shapes():
    assert error_text_of({"error": {"message": "bad key", "code": "invalid_api_key"}}) == "invalid_api_key: bad key"
    assert error_text_of({"error": "quota exceeded"}) == "quota exceeded"
    assert error_text_of([{"error": {"message": "first"}}]) == "first"
    assert error_text_of({"base_resp": {"status_code": 1004, "status_msg": "login fail"}}) == "login fail"
    assert error_text_of({"message": "Not Found"}) == "Not Found"
    assert error_text_of({"id": "x"}) is None
    assert error_text_of(None) is None
