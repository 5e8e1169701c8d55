"""The ASGI entry point: proxy POSTs go straight to the Forwarder, everything else to Quart.

The two proxy routes are the hot path. Quart's request and app contexts, werkzeug routing and
header objects cost about as much CPU as the proxying itself, so those routes speak ASGI directly;
health, models and management stay ordinary Quart routes.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from hermit.proxy.forward import Forwarder, ProxyError, Reply

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

FAST_PATHS = {
    "/v1/chat/completions": "chat",
    "/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/embeddings": "embeddings",
}
WANTED_HEADERS = frozenset(
    {b"user-agent", b"x-hermit-client", b"x-hermit-project", b"x-hermit-hop", b"content-length"}
)


class HermitASGI:
    def __init__(self, quart_app, forwarder: Forwarder, max_body_bytes: int) -> None:
        self.quart = quart_app
        self.forwarder = forwarder
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = FAST_PATHS.get(scope["path"])
            if endpoint is not None:
                await self._proxied(endpoint, scope, receive, send)
                return
        await self.quart(scope, receive, send)

    async def _proxied(self, endpoint: str, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in WANTED_HEADERS
        }
        forwarder = self.forwarder
        call = forwarder.new_call(endpoint, headers)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await _send_reply(send, receive, forwarder.reject(call, self._too_large()))
            return
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its request: nothing was proxied
            body = message.get("body", b"")
            if body:
                size += len(body)
                if size > self.max_body:
                    await _send_reply(send, receive, forwarder.reject(call, self._too_large()))
                    return
                parts.append(body)
            if not message.get("more_body", False):
                break
        raw = parts[0] if len(parts) == 1 else b"".join(parts)
        if endpoint == "chat":
            reply = await forwarder.chat(call, raw, headers)
        else:
            reply = await forwarder.embeddings(call, raw, headers)
        await _send_reply(send, receive, reply)

    def _too_large(self) -> ProxyError:
        return ProxyError(
            413, f"request body is larger than the {self.max_body} byte limit (HERMIT_MAX_BODY_BYTES)",
            "invalid_request_error", "request_too_large",
        )


def _encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def _send_reply(send: Send, receive: Receive, reply: Reply) -> None:
    await send({"type": "http.response.start", "status": reply.status, "headers": _encode_headers(reply.headers)})
    if reply.stream is None:
        await send({"type": "http.response.body", "body": reply.body, "more_body": False})
        return
    relay = asyncio.ensure_future(_relay(send, reply))
    gone = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait((relay, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not relay.done():
            relay.cancel()  # the client went away: the relay records what it saw (499)
            try:
                await relay
            except asyncio.CancelledError:
                pass
        gone.cancel()
    if relay.done() and not relay.cancelled():
        relay.result()


async def _relay(send: Send, reply: Reply) -> None:
    stream = reply.stream
    try:
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        await stream.aclose()


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
