"""Token accounting: SSE framing, usage normalisation across providers, and estimates.

Normalised usage follows OpenAI's semantics: ``prompt_tokens`` is all input including
cache reads and writes, ``cached_tokens`` is the cache-read subset of it,
``completion_tokens`` is all output including reasoning, and
``total_tokens = prompt_tokens + completion_tokens``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

USAGE_UPSTREAM = "upstream"
USAGE_ESTIMATED = "estimated"
USAGE_NONE = "none"


@dataclass(slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_tokens: int | None = None
    upstream_cost_usd: float | None = None
    source: str = USAGE_NONE

    @classmethod
    def zero(cls) -> "Usage":
        return cls(0, 0, 0, None, None, None, None, USAGE_NONE)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _details(usage: dict, key: str) -> dict:
    value = usage.get(key)
    return value if isinstance(value, dict) else {}


def has_counts(usage: Any) -> bool:
    """A usage object worth keeping: a dict with at least one non-zero count."""
    if not isinstance(usage, dict):
        return False
    for key in ("prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens"):
        value = usage.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return True
    return False


def normalize_usage(usage: dict) -> Usage:
    """Turn one provider's usage object into OpenAI-semantics counts."""
    prompt = _int_or_none(usage.get("prompt_tokens"))
    if prompt is None:
        prompt = _int_or_none(usage.get("input_tokens"))
    completion = _int_or_none(usage.get("completion_tokens"))
    if completion is None:
        completion = _int_or_none(usage.get("output_tokens"))
    total = _int_or_none(usage.get("total_tokens"))
    pdet = _details(usage, "prompt_tokens_details") or _details(usage, "input_tokens_details")
    cdet = _details(usage, "completion_tokens_details") or _details(usage, "output_tokens_details")

    cached = _int_or_none(pdet.get("cached_tokens"))
    if cached is None:
        cached = _int_or_none(usage.get("prompt_cache_hit_tokens"))
    cache_read = _int_or_none(usage.get("cache_read_input_tokens"))
    if cached is None:
        cached = cache_read
    cache_write = _int_or_none(usage.get("cache_creation_input_tokens"))
    if cache_write is None:
        cache_write = _int_or_none(pdet.get("cache_write_tokens"))
    if cache_write is None:
        cache_write = _int_or_none(pdet.get("cache_creation_tokens"))
    reasoning = _int_or_none(cdet.get("reasoning_tokens"))

    prompt = prompt or 0
    completion = completion or 0
    read = cache_read or 0
    written = _int_or_none(usage.get("cache_creation_input_tokens")) or 0
    if (read or written) and prompt < read + written:
        # Anthropic semantics: prompt_tokens counted only the uncached input.
        prompt += read + written
    elif total is not None and total > prompt + completion:
        # xAI / Gemini: reasoning sits outside completion_tokens but inside the total.
        hidden = total - prompt - completion
        completion = total - prompt
        if reasoning is None:
            reasoning = hidden
    cost = usage.get("cost")
    upstream_cost = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
    ticks = usage.get("cost_in_usd_ticks")
    if upstream_cost is None and isinstance(ticks, int) and not isinstance(ticks, bool):
        upstream_cost = ticks / 1e10
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cached_tokens=cached,
        reasoning_tokens=reasoning,
        cache_write_tokens=cache_write,
        upstream_cost_usd=upstream_cost,
        source=USAGE_UPSTREAM,
    )


# ---------------------------------------------------------------------------------------
# Estimates, for when the upstream gives no numbers (cut streams, old servers, errors).

_WORDISH = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def estimate_text_tokens(text: str) -> int:
    """A rough token count: about four characters or one word-piece per token."""
    if not text:
        return 0
    pieces = len(_WORDISH.findall(text))
    return max(pieces, math.ceil(len(text) / 4))


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return " ".join(parts)
    return ""


def estimate_prompt_tokens(body: dict) -> int:
    """Prompt estimate for a chat or embeddings request body."""
    messages = body.get("messages")
    if isinstance(messages, list):
        total = 3
        for message in messages:
            if isinstance(message, dict):
                total += 4 + estimate_text_tokens(_message_text(message.get("content")))
        return total
    inp = body.get("input")
    if isinstance(inp, str):
        return estimate_text_tokens(inp)
    if isinstance(inp, list):
        return sum(estimate_text_tokens(x) if isinstance(x, str) else len(x) if isinstance(x, list) else 0 for x in inp)
    return 0


def estimated_usage(body: dict, completion_text: str = "", content_chunks: int = 0) -> Usage:
    prompt = estimate_prompt_tokens(body)
    completion = max(estimate_text_tokens(completion_text), content_chunks)
    return Usage(prompt, completion, prompt + completion, None, None, None, None, USAGE_ESTIMATED)


# ---------------------------------------------------------------------------------------
# Server-Sent Events framing (WHATWG): lines end in \r\n, \n or \r; a blank line ends an
# event; lines starting with ':' are comments; a trailing unterminated event is dropped.


@dataclass(slots=True)
class SSEEvent:
    raw: bytes  # the exact bytes of the event, blank line included
    data: bytes | None  # data lines joined with \n, None for comment-only events


class SSEParser:
    """Incremental SSE framer that keeps each event's raw bytes for relaying.

    Every byte fed ends up in exactly one event's ``raw`` or in ``pending()``, so relaying the raws
    reproduces the upstream bytes. Blank lines outside an event are kept as a prefix of the next event.
    A CR that ends a chunk ends its line at once (so a CR-framed event is delivered without waiting for
    more bytes); an LF that then starts the next chunk completes that CRLF and is skipped.
    """

    __slots__ = ("_buf", "_pos", "_lines", "_skip_lf")

    def __init__(self) -> None:
        self._buf = b""  # bytes since the end of the last dispatched event
        self._pos = 0  # offset in _buf of the first byte not yet split into lines
        self._lines: list[bytes] = []  # non-blank lines of the event being read
        self._skip_lf = False  # the last chunk ended in a CR that ended a line

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        buf = self._buf + chunk if self._buf else chunk
        pos = self._pos
        if self._skip_lf:
            self._skip_lf = False
            if buf[pos] == 0x0A:
                pos += 1
        events: list[SSEEvent] = []
        lines = self._lines
        start = 0
        n = len(buf)
        # A CR before the end of `buf` always ends a line, so bytes from `pos` on hold a CR only if
        # this chunk does: a chunk without one can take the LF-only fast path.
        any_cr = b"\r" in chunk
        while pos < n:
            eol = _next_eol(buf, pos) if any_cr else buf.find(b"\n", pos)
            if eol < 0:
                break
            nxt = eol + 1
            if buf[eol] == 0x0D:
                if nxt < n:
                    if buf[nxt] == 0x0A:
                        nxt += 1
                else:
                    self._skip_lf = True
            if eol == pos:
                if lines:
                    events.append(SSEEvent(buf[start:nxt], _data_of(lines)))
                    lines = []
                    start = nxt
            else:
                lines.append(buf[pos:eol])
            pos = nxt
        self._buf = buf[start:]
        self._pos = pos - start
        self._lines = lines
        return events

    def pending(self) -> bytes:
        """Bytes of an unterminated event (discarded at end of stream)."""
        return self._buf


def _next_eol(buf: bytes, pos: int) -> int:
    lf = buf.find(b"\n", pos)
    cr = buf.find(b"\r", pos)
    if lf < 0:
        return cr
    if cr < 0:
        return lf
    return min(lf, cr)


def _data_of(lines: Iterable[bytes]) -> bytes | None:
    data: list[bytes] | None = None
    for line in lines:
        if not line or line[:1] == b":":
            continue
        name, sep, value = line.partition(b":")
        if name != b"data":
            continue
        if value[:1] == b" ":
            value = value[1:]
        if data is None:
            data = []
        data.append(value)
    return None if data is None else b"\n".join(data)


class StreamAccountant:
    """Watches a relayed chat stream: usage, content, errors and which events to drop."""

    __slots__ = (
        "usage_raw", "content_parts", "content_chunks", "error", "finish_reason",
        "saw_done", "strip_usage_only", "events", "other_parts", "other_chunks",
    )

    def __init__(self, strip_usage_only: bool) -> None:
        self.usage_raw: dict | None = None
        self.content_parts: list[str] = []
        self.content_chunks = 0
        # Generated text that is not delta.content (reasoning, tool-call arguments): billed output,
        # so it counts towards an estimate, but it is not part of `content`.
        self.other_parts: list[str] = []
        self.other_chunks = 0
        self.error: str | None = None
        self.finish_reason: str | None = None
        self.saw_done = False
        self.strip_usage_only = strip_usage_only
        self.events = 0

    def observe(self, event: SSEEvent) -> bool:
        """Account for one event; True to relay it to the client, False to drop it."""
        data = event.data
        if data is None:
            return True
        self.events += 1
        if data == b"[DONE]":
            self.saw_done = True
            return True
        try:
            payload = json.loads(data)
        except ValueError:
            return True
        if not isinstance(payload, dict):
            return True
        err = payload.get("error")
        if err:
            self.error = _error_text(err)
        choices = payload.get("choices")
        if isinstance(choices, list) and choices:
            first = choices[0]
            if isinstance(first, dict):
                delta = first.get("delta")
                if isinstance(delta, dict):
                    text = delta.get("content")
                    if isinstance(text, str) and text:
                        self.content_parts.append(text)
                        self.content_chunks += 1
                    if _other_text(delta, self.other_parts):
                        self.other_chunks += 1
                reason = first.get("finish_reason")
                if reason:
                    self.finish_reason = reason
        usage = payload.get("usage")
        if isinstance(usage, dict):
            if has_counts(usage):
                self.usage_raw = usage
            # A usage-only chunk (no choices) reaches only clients that asked for include_usage;
            # a chunk with empty choices and no usage (Azure's prompt_filter_results) always does.
            if self.strip_usage_only and not choices and not err:
                return False
        return True

    @property
    def content(self) -> str:
        return "".join(self.content_parts)

    def usage(self, request_body: dict) -> Usage:
        if self.usage_raw is not None:
            return normalize_usage(self.usage_raw)
        text = self.content
        if self.other_parts:
            text = "".join(self.other_parts) + text
        return estimated_usage(request_body, text, self.content_chunks + self.other_chunks)


def _other_text(delta: dict, out: list[str]) -> bool:
    """Collect a delta's reasoning text and tool-call arguments; True when there was any."""
    found = False
    for key in ("reasoning_content", "reasoning"):
        text = delta.get(key)
        if isinstance(text, str) and text:
            out.append(text)
            found = True
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                for key in ("name", "arguments"):
                    text = fn.get(key)
                    if isinstance(text, str) and text:
                        out.append(text)
                        found = True
    return found


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        message = err.get("message") or err.get("msg") or json.dumps(err)[:500]
        code = err.get("code")
        return f"{code}: {message}" if code not in (None, "") else str(message)
    return str(err)[:500]


def body_usage(payload: Any, request_body: dict) -> Usage:
    """Usage of a non-streaming response body (estimated when it carries none)."""
    if isinstance(payload, dict) and has_counts(payload.get("usage")):
        return normalize_usage(payload["usage"])
    text = ""
    if isinstance(payload, dict):
        choices = payload.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                    content = choice["message"].get("content")
                    if isinstance(content, str):
                        text += content
    return estimated_usage(request_body, text)


def error_text_of(payload: Any) -> str | None:
    """The error message of an upstream error body, in any provider's shape."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if isinstance(payload, dict):
        if "error" in payload and payload["error"]:
            return _error_text(payload["error"])
        base = payload.get("base_resp")
        if isinstance(base, dict) and base.get("status_msg"):
            return str(base["status_msg"])
        if payload.get("message"):
            return str(payload["message"])
    return None
