"""HTTP transports to upstream providers, behind one small interface.

Two implementations: aiohttp (the default) and httpx. On these machines, 32 concurrent calls through a bare
proxy did ~6,200 req/s with an ``aiohttp.ClientSession`` against ~530 req/s with httpx's default pool
(bench/gateway_bench.py measures both). Transport failures come out as the gateway's typed errors.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import aiohttp
import httpx

from gateway.errors import UpstreamError, UpstreamTimeoutError

__all__ = ["AiohttpTransport", "HttpxTransport", "Transport", "UpstreamResponse", "make_transport"]


class UpstreamResponse:
    __slots__ = ("status", "headers", "_lines")

    def __init__(self, status: int, headers: Mapping[str, str], lines: AsyncIterator[bytes]) -> None:
        self.status = status
        self.headers = headers
        self._lines = lines

    def lines(self) -> AsyncIterator[bytes]:
        return self._lines

    async def read(self) -> bytes:
        return b"".join([line async for line in self._lines])


class Transport(Protocol):
    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, *, timeout: float, connect_timeout: float
    ) -> tuple[int, Mapping[str, str], bytes]: ...

    def stream(
        self, url: str, headers: Mapping[str, str], body: bytes, *, timeout: float, connect_timeout: float
    ) -> AbstractAsyncContextManager[UpstreamResponse]: ...

    async def close(self) -> None: ...


def _unreachable(url: str, exc: BaseException) -> UpstreamError:
    return UpstreamError(f"could not reach the provider at {url}: {type(exc).__name__}", code="upstream_unreachable")


def _timed_out(url: str, timeout: float | None = None) -> UpstreamTimeoutError:
    within = f" within {timeout:.1f}s" if timeout is not None else " in time"
    return UpstreamTimeoutError(f"the provider at {url} did not answer{within}", code="upstream_timeout")


@functools.lru_cache(maxsize=256)
def _client_timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    """Timeouts are per provider, so a handful of distinct values: build each (an attrs object) once."""
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)


class AiohttpTransport:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    async def post(self, url, headers, body, *, timeout, connect_timeout):  # type: ignore[no-untyped-def]
        t = _client_timeout(timeout, connect_timeout)
        try:
            # not ``async with``: its exit also awaits the request-writer task, long done once the answer is read
            resp = await self._client().post(url, data=body, headers=headers, timeout=t)
            try:
                return resp.status, resp.headers, await resp.read()
            finally:
                resp.release()
        except TimeoutError:
            raise _timed_out(url, timeout) from None
        except aiohttp.ClientError as exc:
            raise _unreachable(url, exc) from None

    @asynccontextmanager
    async def stream(self, url, headers, body, *, timeout, connect_timeout):  # type: ignore[no-untyped-def]
        t = _client_timeout(timeout, connect_timeout)
        try:
            resp = await self._client().post(url, data=body, headers=headers, timeout=t)
        except TimeoutError:
            raise _timed_out(url, timeout) from None
        except aiohttp.ClientError as exc:
            raise _unreachable(url, exc) from None

        async def lines() -> AsyncIterator[bytes]:
            try:
                async for line in resp.content:
                    yield line
            except TimeoutError:
                raise _timed_out(url) from None
            except aiohttp.ClientError as exc:
                raise UpstreamError(
                    f"the provider's stream broke off: {type(exc).__name__}",
                    code="upstream_stream_interrupted",
                ) from None

        try:
            yield UpstreamResponse(resp.status, resp.headers, lines())
        finally:
            resp.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpxTransport:
    def __init__(self) -> None:
        self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=None, max_keepalive_connections=200))

    async def post(self, url, headers, body, *, timeout, connect_timeout):  # type: ignore[no-untyped-def]
        try:
            resp = await self._client.post(
                url, content=body, headers=headers, timeout=httpx.Timeout(timeout, connect=connect_timeout)
            )
        except httpx.TimeoutException:
            raise _timed_out(url, timeout) from None
        except httpx.TransportError as exc:
            raise _unreachable(url, exc) from None
        return resp.status_code, resp.headers, resp.content

    @asynccontextmanager
    async def stream(self, url, headers, body, *, timeout, connect_timeout):  # type: ignore[no-untyped-def]
        req = self._client.build_request(
            "POST",
            url,
            content=body,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
        )
        try:
            resp = await self._client.send(req, stream=True)
        except httpx.TimeoutException:
            raise _timed_out(url) from None
        except httpx.TransportError as exc:
            raise _unreachable(url, exc) from None

        async def lines() -> AsyncIterator[bytes]:
            try:
                async for line in resp.aiter_lines():
                    yield line.encode() + b"\n"
            except httpx.TimeoutException:
                raise _timed_out(url) from None
            except httpx.TransportError as exc:
                raise UpstreamError(
                    f"the provider's stream broke off: {type(exc).__name__}",
                    code="upstream_stream_interrupted",
                ) from None

        try:
            yield UpstreamResponse(resp.status_code, resp.headers, lines())
        finally:
            await resp.aclose()

    async def close(self) -> None:
        await self._client.aclose()


def make_transport(name: str) -> Transport:
    return HttpxTransport() if name == "httpx" else AiohttpTransport()
