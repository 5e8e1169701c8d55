"""The upstream connection pool: httpx's API over aiohttp's transport, with honest error types.

httpx-aiohttp maps every aiohttp connection error to ``httpx.ConnectTimeout``, so a refused
connection or an upstream that hangs up would read as a timeout (504) everywhere. This pool
re-raises each failure as the httpx type it really is, keeping aiohttp's exception as the cause,
so the proxy and the quick test can rely on plain httpx types.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def remap(exc: BaseException) -> BaseException:
    """The httpx exception that says what actually happened to an upstream exchange."""
    original = exc.__cause__ if isinstance(exc, httpx.HTTPError) and exc.__cause__ is not None else exc
    if isinstance(original, httpx.HTTPError):
        return original
    text = str(original) or type(original).__name__
    if isinstance(original, aiohttp.ConnectionTimeoutError):
        new: BaseException = httpx.ConnectTimeout(text)
    elif isinstance(original, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        new = httpx.ReadTimeout(text)
    elif isinstance(original, aiohttp.ClientConnectorError):
        new = httpx.ConnectError(text)
    elif isinstance(original, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        new = httpx.RemoteProtocolError(text)
    elif isinstance(original, (aiohttp.ClientConnectionError, OSError)):
        new = httpx.ReadError(text)
    else:
        return exc
    new.__cause__ = original
    return new


class _Stream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except (httpx.HTTPError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise remap(exc)

    async def aclose(self) -> None:
        await self._inner.aclose()


class AiohttpPool(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except (httpx.HTTPError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise remap(exc)
        response.stream = _Stream(response.stream)
        return response
