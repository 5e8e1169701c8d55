"""Fast stdlib-only fake OpenAI-compatible HTTP/1.1 upstream for tests, benchmarks and demos."""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import dataclasses
import functools
import http
import json
import math
import signal
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
FIXTURE_PIECE = 64
WORDS = ("Hello", "from", "the", "fake", "upstream,", "chunk", "by", "chunk.")
_BAD = object()
_dumps = json.JSONEncoder(separators=(",", ":")).encode
_J = b"application/json"
_MODELS = _dumps({"object": "list", "data": [
    {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in ("fake-model-a", "fake-model-b")
]}).encode()
_STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
                b"transfer-encoding: chunked\r\n")
_ERR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
              404: "not_found_error", 429: "rate_limit_error"}
_FLAGS = ("nousage", "usagefinish", "cumulative", "garbage", "hang", "close", "rejectstreamoptions")
_PHRASES = {s.value: s.phrase for s in http.HTTPStatus}
_prefix_cache: dict[tuple[int, bytes], bytes] = {}


class RecordedRequest(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any


@dataclasses.dataclass(slots=True)
class Scenario:
    """A ``+``-joined scenario such as ``slowstream-20+chunks-5``.

    Tokens: ok, chunks-N, cached-N, reasoning-N, nousage, usagefinish, cumulative, error-SSS, garbage,
    slow-S (seconds before headers), slowstream-MS (ms before each event), hang, close,
    rejectstreamoptions, fixture-NAME (replays ``<fixtures_dir>/NAME.sse`` or ``NAME.json``).
    """

    chunks: int = 8
    cached: int | None = None
    reasoning: int | None = None
    error: int | None = None
    slow: float = 0.0
    slowstream: float = 0.0  # seconds before each streamed event
    fixture: str | None = None
    nousage: bool = False
    usagefinish: bool = False
    cumulative: bool = False
    garbage: bool = False
    hang: bool = False
    close: bool = False
    rejectstreamoptions: bool = False

    @classmethod
    def parse(cls, spec: str, strict: bool = False) -> Scenario:
        """Unknown tokens raise ValueError when ``strict`` (path prefix) and are ignored otherwise (model)."""
        sc = cls()
        for tok in spec.split("+"):
            tok = tok.strip()
            name, _, arg = tok.partition("-")
            try:
                if tok in ("", "ok", "embeddings"):
                    pass
                elif tok in _FLAGS:
                    setattr(sc, tok, True)
                elif name == "fixture" and arg and not arg.startswith(".") and "/" not in arg and "\\" not in arg:
                    sc.fixture = arg
                elif name == "chunks":
                    sc.chunks = min(max(int(arg), 0), 100_000) if arg else 8
                elif name in ("cached", "reasoning") and int(arg) >= 0:
                    setattr(sc, name, int(arg))
                elif name == "error" and 200 <= int(arg) <= 599:
                    sc.error = int(arg)
                elif name in ("slow", "slowstream") and 0 <= float(arg) < 1e6:
                    setattr(sc, name, float(arg) if name == "slow" else float(arg) / 1000)
                else:
                    raise ValueError(tok)
            except ValueError:
                if strict:
                    raise ValueError(f"unknown scenario token {tok!r}") from None
        return sc

    @property
    def is_async(self) -> bool:
        return bool(self.slow or self.hang or self.fixture)


_DEFAULT = Scenario()


def _scenario(spec: str, strict: bool, cache: dict[tuple[str, bool], Scenario]) -> Scenario:
    sc = cache.get((spec, strict))
    if sc is None:
        if len(cache) > 4096:
            cache.clear()
        sc = cache[(spec, strict)] = Scenario.parse(spec, strict)
    return sc


def error_body(message: str, type_: str = "invalid_request_error", param: str | None = None,
               code: str | int | None = None) -> bytes:
    return _dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


def _prefix(status: int, ctype: bytes) -> bytes:
    p = _prefix_cache.get((status, ctype))
    if p is None:
        line = f"HTTP/1.1 {status} {_PHRASES.get(status, 'Unknown')}\r\ncontent-type: ".encode()
        p = _prefix_cache[(status, ctype)] = line + ctype + b"\r\ncontent-length: "
    return p


def _words(text: Any) -> int:
    return len(text.split()) if isinstance(text, str) else 0


def prompt_tokens(messages: Any) -> int:
    """Deterministic prompt size: whitespace words of all message text + 3 per message."""
    if not isinstance(messages, list):
        return 0
    n = 0
    for m in messages:
        n += 3
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, list):
            n += sum(_words(p.get("text")) for p in c if isinstance(p, dict))
        else:
            n += _words(c)
    return n


@functools.lru_cache(maxsize=64)
def _pieces(n: int) -> tuple[str, ...]:
    return tuple((" " if i else "") + WORDS[i % len(WORDS)] for i in range(n))


def _usage(prompt: int, words: int, sc: Scenario) -> dict[str, Any]:
    comp = words + (sc.reasoning or 0)
    u: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": comp, "total_tokens": prompt + comp}
    if sc.cached is not None:
        u["prompt_tokens_details"] = {"cached_tokens": min(sc.cached, prompt)}
    if sc.reasoning is not None:
        u["completion_tokens_details"] = {"reasoning_tokens": sc.reasoning}
    return u


class FakeUpstream:
    """Asyncio fake upstream; scenarios come from ``/s/<scenario>/v1`` or a ``fake-<scenario>`` model."""

    def __init__(self, fixtures_dir: str | Path | None = None, record: bool = True) -> None:
        self.fixtures_dir = Path(fixtures_dir) if fixtures_dir is not None else None
        self.record = record
        self.requests: collections.deque[RecordedRequest] = collections.deque(maxlen=10000)
        self.port = 0
        self.host = "127.0.0.1"
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[_Conn] = set()
        self._scenarios: dict[tuple[str, bool], Scenario] = {}
        self._seq = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Conn(self), host, port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        if host not in ("", "0.0.0.0", "::", "localhost"):
            self.host = f"[{host}]" if ":" in host else host

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [c.task for c in self._conns if c.task is not None]
        for conn in list(self._conns):
            conn.shutdown()
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def url(self, scenario: str) -> str:
        return f"http://{self.host}:{self.port}/s/{scenario}/v1"

    def clear(self) -> None:
        self.requests.clear()

    def rewrite_target(self, method: str, target: str, body: bytes) -> str:
        """Hook for subclasses: pick a scenario per request by rewriting its path (as is here)."""
        return target

    def next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-fake{self._seq}"

    # ------------------------------------------------------------------ responses
    def build(self, route: str, obj: Any, sc: Scenario) -> tuple[int, bytes, bytes] | list[bytes]:
        """Return ``(status, content_type, body)`` or, for SSE, the list of pieces to stream."""
        if sc.rejectstreamoptions and isinstance(obj, dict) and "stream_options" in obj:
            return 400, _J, error_body("Unrecognized request argument supplied: stream_options",
                                       param="stream_options")
        if sc.error is not None:
            s = sc.error
            typ = _ERR_TYPES.get(s, "server_error" if s >= 500 else "invalid_request_error")
            return s, _J, error_body(f"Fake upstream error: HTTP {s} {_PHRASES.get(s, '')}".strip(), typ,
                                     code="rate_limit_exceeded" if s == 429 else str(s))
        if sc.garbage:
            return 200, b"text/html", b"<html>oops</html>"
        if sc.fixture:
            return self._fixture(sc.fixture)
        if route == "models":
            return 200, _J, _MODELS
        if route == "embeddings":
            return self._embeddings(obj)
        model = obj.get("model")
        model = model if isinstance(model, str) else "fake-model"
        prompt = prompt_tokens(obj.get("messages"))
        pieces = _pieces(sc.chunks)
        if obj.get("stream") is True:
            so = obj.get("stream_options")
            return self._stream(model, prompt, pieces, sc, isinstance(so, dict) and so.get("include_usage") is True)
        res: dict[str, Any] = {
            "id": self.next_id("chatcmpl"), "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(pieces), "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}]}
        if not sc.nousage:
            res["usage"] = _usage(prompt, len(pieces), sc)
        return 200, _J, _dumps(res).encode()

    def _stream(self, model: str, prompt: int, pieces: tuple[str, ...], sc: Scenario, include: bool) -> list[bytes]:
        head = (f'data: {{"id":"{self.next_id("chatcmpl")}","object":"chat.completion.chunk",'
                f'"created":{int(time.time())},"model":{_dumps(model)},"system_fingerprint":"fp_fake","choices":')
        inline = not sc.nousage and (sc.usagefinish or sc.cumulative)
        include = include and not sc.nousage
        null = "null" if include or inline else None

        def ev(delta: Any, finish: str | None, usage: str | None, empty: bool = False) -> bytes:
            ch = "[]" if empty else (f'[{{"index":0,"delta":{_dumps(delta)},"logprobs":null,'
                                     f'"finish_reason":{_dumps(finish)}}}]')
            return (head + ch + ("" if usage is None else ',"usage":' + usage) + "}\n\n").encode()

        final = _dumps(_usage(prompt, len(pieces), sc))
        out = [ev({"role": "assistant", "content": ""}, None, null)]
        for i, p in enumerate(pieces):
            out.append(ev({"content": p}, None, _dumps(_usage(prompt, i + 1, sc)) if sc.cumulative and
                          not sc.nousage else null))
        out.append(ev({}, "stop", final if inline else null))
        if include and not inline:
            out.append(ev(None, None, final, empty=True))
        out.append(b"data: [DONE]\n\n")
        return out

    def _fixture(self, name: str) -> tuple[int, bytes, bytes] | list[bytes]:
        if self.fixtures_dir is None:
            return 500, _J, error_body("fake upstream has no fixtures_dir configured", "server_error")
        for ext in (".sse", ".json"):
            path = self.fixtures_dir / (name + ext)
            if path.is_file():
                data = path.read_bytes()
                if ext == ".json":
                    return 200, _J, data
                return [data[i:i + FIXTURE_PIECE] for i in range(0, len(data), FIXTURE_PIECE)]
        return 500, _J, error_body(f"fixture {name!r} not found in {self.fixtures_dir}", "server_error")

    def _embeddings(self, obj: dict[str, Any]) -> tuple[int, bytes, bytes]:
        inp = obj.get("input")
        if isinstance(inp, str) or (isinstance(inp, list) and inp and all(isinstance(x, int) for x in inp)):
            items: list[Any] = [inp]
        elif isinstance(inp, list) and inp:
            items = inp
        else:
            return 400, _J, error_body("'input' is a required property", param="input")
        b64 = obj.get("encoding_format") == "base64"
        data, total = [], 0
        for i, item in enumerate(items):
            total += _words(item) if isinstance(item, str) else len(item) if isinstance(item, list) else 1
            seed = zlib.crc32(repr(item).encode())
            vec: Any = [round(math.sin(seed * 1e-3 + k), 6) for k in range(8)]
            if b64:
                vec = base64.b64encode(struct.pack("<8f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vec})
        model = obj.get("model") if isinstance(obj.get("model"), str) else "fake-embedding"
        return 200, _J, _dumps({"object": "list", "data": data, "model": model,
                                "usage": {"prompt_tokens": total, "total_tokens": total}}).encode()


_ROUTES = {("POST", "/chat/completions"): "chat", ("POST", "/embeddings"): "embeddings", ("GET", "/models"): "models"}


def _parse_chunked(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at ``pos``; None if incomplete, ValueError if malformed."""
    out: list[bytes] = []
    while True:
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            return None
        size = int(bytes(buf[pos:nl]).split(b";", 1)[0].strip(), 16)
        if not 0 <= size <= MAX_BODY or len(out) > 100_000:
            raise ValueError("bad chunk")
        pos = nl + 2
        if size == 0:
            while True:  # trailers up to the empty line
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    return None
                if nl == pos:
                    return b"".join(out), nl + 2
                pos = nl + 2
        if len(buf) < pos + size + 2:
            return None
        if buf[pos + size:pos + size + 2] != b"\r\n":
            raise ValueError("bad chunk terminator")
        out.append(bytes(buf[pos:pos + size]))
        pos += size + 2


class _Conn(asyncio.Protocol):
    """One client connection: parse requests from ``buf``, answer one at a time (keep-alive)."""

    def __init__(self, srv: FakeUpstream) -> None:
        self.srv = srv
        self.t: asyncio.Transport = None  # type: ignore[assignment]
        self.buf = bytearray()
        self.busy = self.continued = False
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]
        self.srv._conns.add(self)
        self.srv.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.srv._conns.discard(self)
        self.shutdown()

    def shutdown(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.t.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self.process()

    def send(self, status: int, ctype: bytes, body: bytes, ka: bool) -> None:
        self.t.write(b"".join((_prefix(status, ctype), str(len(body)).encode(),
                               b"\r\n\r\n" if ka else b"\r\nconnection: close\r\n\r\n", body)))
        if not ka:
            self.t.close()

    def process(self) -> None:
        buf = self.buf
        while buf and not self.busy and not self.t.is_closing():
            while buf[:2] == b"\r\n":
                del buf[:2]
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self.send(431, _J, error_body("request headers too large"), False)
                return
            try:
                lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ")
                if not version.startswith("HTTP/1.") or not target.startswith("/"):
                    raise ValueError
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if not sep or not name or name != name.strip():
                        raise ValueError
                    name, value = name.lower(), value.strip()
                    headers[name] = f"{headers[name]}, {value}" if name in headers else value
                if not self.continued and headers.get("expect", "").lower() == "100-continue":
                    self.continued = True
                    self.t.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                te, cl = headers.get("transfer-encoding"), headers.get("content-length", "0")
                if te is not None:
                    if not te.lower().endswith("chunked"):
                        raise ValueError
                    parsed = _parse_chunked(buf, end + 4)
                    if parsed is None:
                        if len(buf) > MAX_BODY:
                            raise ValueError
                        return
                    body, pos = parsed
                else:
                    if not cl.isdigit() or int(cl) > MAX_BODY:
                        raise ValueError
                    pos = end + 4 + int(cl)
                    if len(buf) < pos:
                        return
                    body = bytes(buf[end + 4:pos])
            except ValueError:
                self.send(400, _J, error_body("malformed HTTP request"), False)
                return
            del buf[:pos]
            self.continued = False
            conn = headers.get("connection", "").lower()
            ka = "keep-alive" in conn if version == "HTTP/1.0" else "close" not in conn
            try:
                self.dispatch(method, target, headers, body, ka)
            except Exception as exc:  # a handler bug must not kill the connection loop
                self.send(500, _J, error_body(f"fake upstream internal error: {exc!r}", "server_error"), ka)

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes, ka: bool) -> None:
        srv = self.srv
        target = srv.rewrite_target(method, target, body)
        path = target.split("?", 1)[0]
        spec = None
        if path.startswith("/s/"):
            seg, _, rest = path[3:].partition("/")
            spec, path = unquote(seg), "/" + rest
        obj: Any = None
        if body:
            try:
                obj = json.loads(body)
            except (ValueError, RecursionError):
                obj = _BAD
        if srv.record:
            srv.requests.append(RecordedRequest(method, target, headers, body, None if obj is _BAD else obj))
        if obj is _BAD:
            return self.send(400, _J, error_body("We could not parse the JSON body of your request."), ka)
        route = _ROUTES.get((method, path[3:])) if path.startswith("/v1/") else None
        if route is None:
            return self.send(404, _J, error_body(f"Invalid URL ({method} {path})", code="unknown_url"), ka)
        if route != "models" and not isinstance(obj, dict):
            return self.send(400, _J, error_body("The request body must be a JSON object."), ka)
        if spec is not None:
            try:
                sc = _scenario(spec, True, srv._scenarios)
            except ValueError as exc:
                return self.send(400, _J, error_body(str(exc)), ka)
        else:
            model = obj.get("model") if isinstance(obj, dict) else None
            sc = (_scenario(model[5:], False, srv._scenarios)
                  if isinstance(model, str) and model.startswith("fake-") else _DEFAULT)
        if sc.close and not sc.slow:
            self.buf.clear()
            self.t.close()
            return None
        res = None if sc.is_async else srv.build(route, obj, sc)
        if isinstance(res, tuple):
            return self.send(*res, ka)
        self.busy = True
        self.task = asyncio.get_running_loop().create_task(self.run(route, obj, sc, ka, res))
        return None

    async def run(self, route: str, obj: Any, sc: Scenario, ka: bool, res: list[bytes] | None) -> None:
        started = False
        try:
            if sc.slow:
                await asyncio.sleep(sc.slow)
            if sc.close:
                self.t.close()
                return
            if sc.hang:
                await asyncio.get_running_loop().create_future()
            built = res if res is not None else self.srv.build(route, obj, sc)
            if isinstance(built, tuple):
                return self.send(*built, ka)
            started = True
            self.t.write(_STREAM_HEAD + (b"\r\n" if ka else b"connection: close\r\n\r\n"))
            for piece in built:
                await asyncio.sleep(sc.slowstream)  # sleep(0) still lets each event go out on its own
                while self.t.get_write_buffer_size() > 256 * 1024 and not self.t.is_closing():
                    await asyncio.sleep(0.001)  # crude back-pressure for slow readers
                if self.t.is_closing():
                    return
                self.t.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            self.t.write(b"0\r\n\r\n")
            if not ka:
                self.t.close()
        except asyncio.CancelledError:
            self.t.close()
        except Exception as exc:
            if not started:
                self.send(500, _J, error_body(f"fake upstream internal error: {exc!r}", "server_error"), False)
            self.t.close()
        finally:
            self.busy, self.task = False, None
            if not self.t.is_closing():
                asyncio.get_running_loop().call_soon(self.process)


class FakeUpstreamThread(FakeUpstream):
    """A FakeUpstream running on its own event loop in a daemon thread (sync context manager for tests)."""

    def __init__(self, fixtures_dir: str | Path | None = None, record: bool = True, host: str = "127.0.0.1",
                 port: int = 0, start_timeout: float = 10.0) -> None:
        super().__init__(fixtures_dir, record)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(host, port), name="fake-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(start_timeout):
            self.close()
            raise TimeoutError("fake upstream did not start in time")
        if self._error is not None:
            self._thread.join(start_timeout)
            raise RuntimeError("fake upstream failed to start") from self._error

    def _run(self, host: str, port: int) -> None:
        loop = self._loop
        try:
            loop.run_until_complete(self.start(host, port))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
        self._ready.set()
        try:
            if self._error is None:
                loop.run_forever()
                loop.run_until_complete(self.stop())
        finally:
            loop.close()

    def close(self) -> None:
        if self._thread.is_alive() and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> FakeUpstreamThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _main(args: argparse.Namespace) -> None:
    srv = FakeUpstream(args.fixtures_dir, record=not args.no_record)
    await srv.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake upstream listening on {srv.base_url}", flush=True)
    await stop.wait()
    await srv.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m hermit.sim.upstream", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100)
    p.add_argument("--fixtures-dir", default=None)
    p.add_argument("--no-record", action="store_true", help="do not keep recorded requests")
    asyncio.run(_main(p.parse_args(argv)))


if __name__ == "__main__":
    main()
