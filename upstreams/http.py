"""The HTTP clients that talk to upstream MCP servers: one pooled async client per process (per
event loop) for the gateway, and ``delete_session`` for the sweeps. The console's tool listing
uses the MCP SDK's own client (``upstreams.transports``).

httpx's API with aiohttp's transport (``httpx_aiohttp.AiohttpTransport``): chosen by measurement,
see ``bench/gateway/`` and the ``gateway`` package docstring. Timeouts: connect and pool waits are
bounded by ``GATEHOUSE_UPSTREAM_TIMEOUT_SECONDS``; reads are unbounded because an open SSE stream
has no total limit (the time to response headers is bounded by the proxy with ``asyncio.timeout``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy

import aiohttp
import httpx
from django.conf import settings
from httpx_aiohttp import AiohttpTransport

from upstreams.target import UpstreamTarget

# Long-lived SSE streams each hold a connection, so the pool must be large.
LIMITS = httpx.Limits(max_connections=10_000, max_keepalive_connections=200, keepalive_expiry=30)
TRANSPORTS = ("aiohttp", "httpx")
DEFAULT_TRANSPORT = "aiohttp"

_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}


def timeout() -> httpx.Timeout:
    limit = settings.UPSTREAM_TIMEOUT_SECONDS
    return httpx.Timeout(connect=limit, read=None, write=limit, pool=limit)


def _no_cookies() -> CookieJar:
    """A jar that keeps nothing: the client is shared by every token and server, so a cookie one
    upstream sets must never ride along to the next request (another tenant, another upstream)."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _aiohttp_session() -> aiohttp.ClientSession:
    # As httpx_aiohttp builds its own, but without aiohttp's cookie jar (same reason).
    connector = aiohttp.TCPConnector(
        limit=LIMITS.max_connections or 0,
        keepalive_timeout=LIMITS.keepalive_expiry,
        ssl=httpx.create_ssl_context(trust_env=False),
    )
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


# Where a response of the aiohttp transport carries aiohttp's own body buffer (``upstreams.body``
# reads it under a deadline without a task per read).
AIOHTTP_CONTENT = "gatehouse.aiohttp_content"


class _Transport(AiohttpTransport):
    """httpx_aiohttp's transport, handing aiohttp's body buffer on in the response's extensions.

    httpx_aiohttp (pinned in requirements.lock) keeps the aiohttp response as
    ``_aiohttp_response``; ``tests/upstreams/test_body_reader.py`` fails if an upgrade moves it.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        content = getattr(getattr(response.stream, "_aiohttp_response", None), "content", None)
        if isinstance(content, aiohttp.StreamReader):
            response.extensions[AIOHTTP_CONTENT] = content
        return response


def build_client(transport: str = DEFAULT_TRANSPORT) -> httpx.AsyncClient:
    if transport == "aiohttp":
        return httpx.AsyncClient(
            transport=_Transport(limits=LIMITS, trust_env=False, client=_aiohttp_session),
            timeout=timeout(),
            follow_redirects=False,
            trust_env=False,
            cookies=_no_cookies(),
        )
    if transport == "httpx":
        return httpx.AsyncClient(
            limits=LIMITS, timeout=timeout(), follow_redirects=False, trust_env=False, cookies=_no_cookies()
        )
    raise ValueError(f"Unknown upstream transport {transport!r}; choose from {TRANSPORTS}.")


def upstream_client() -> httpx.AsyncClient:
    """The shared client of the running event loop (daphne runs one loop per process)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        for stale in [lp for lp in _clients if lp.is_closed()]:
            del _clients[stale]
        client = _clients[loop] = build_client(_transport_choice)
    return client


async def close_upstream_client() -> None:
    """Close the running loop's shared client (its aiohttp session and connector) when the process
    stops, so it ends its connections instead of aiohttp logging "Unclosed client session"."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


_transport_choice = DEFAULT_TRANSPORT


def use_transport(transport: str) -> None:
    """Pick the transport for clients built from now on (the benchmark compares them)."""
    global _transport_choice
    if transport not in TRANSPORTS:
        raise ValueError(f"Unknown upstream transport {transport!r}; choose from {TRANSPORTS}.")
    _transport_choice = transport


def delete_session(
    target: UpstreamTarget, *, upstream_session_id: str, protocol_version: str = "",
    caller: Sequence[tuple[str, str]] = (),
) -> int:
    """End a Streamable HTTP session upstream (DELETE with its ``Mcp-Session-Id``); the status.

    ``caller``: who calls (the signed identity header, the owner's connected account), for a
    server that wants them.

    Synchronous, for the sweeps and the console (Celery tasks and views run no event loop), with
    the same rules as the proxy's client: no cookies, no redirects, no proxies from the
    environment, the upstream timeout. Raises ``httpx.HTTPError`` when the upstream is unreachable.
    """
    headers = {**target.headers, "Mcp-Session-Id": upstream_session_id}
    headers.update(caller)
    if protocol_version:
        headers["MCP-Protocol-Version"] = protocol_version
    with httpx.Client(
        timeout=settings.UPSTREAM_TIMEOUT_SECONDS,
        follow_redirects=False,
        trust_env=False,
        cookies=_no_cookies(),
    ) as client:
        return client.delete(target.url, headers=headers).status_code
