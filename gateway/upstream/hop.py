"""The upstream hop of one proxied exchange: the headers that may cross it, the upstream URL, and
the upstream request opened with a bounded time to response headers.

Nothing here decides policy; the flows (``gateway.flows``) do. The incoming side (``Incoming``,
inbound checks, bounded body reads) is ``gateway.request.incoming``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import httpx
from django.conf import settings

from core.secrets_mask import TOKEN_PREFIX, token_display_prefix
from gateway.admission.credentials import credential_header_names, strip_query_credentials
from gateway.pipeline import spans
from gateway.pipeline.spans import TRACE_HEADERS
from gateway.request import request_metrics
from gateway.request.incoming import Incoming, RawHeaders
from gateway.request.refusals import UpstreamTimeout, UpstreamUnavailable
from upstreams.http import upstream_client

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
     "trailer", "transfer-encoding", "upgrade"}
)
# Request headers that never cross to the upstream: credentials (``credential_header_names``, from
# the credential registry), our own session id, browser state for the gateway's origin, and
# framing the HTTP client recomputes.
_NOT_FORWARDED = HOP_BY_HOP | frozenset(
    {"host", "content-length", "cookie", "origin", "mcp-session-id", "accept-encoding", "forwarded",
     "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"}
)
# Response headers that never cross back: framing (bodies are relayed decoded, so an upstream
# that compresses despite ``identity`` cannot hide a tool list from the filter), the upstream's
# session id (rewritten), its auth challenges (the client's credential is ours, not the
# upstream's), whatever would act on the gateway's origin, which is also the console's
# (cookies, site data, HSTS, content and cross-origin policy, redirects and preloads), and cache
# validators (a filtered tool list is per token: nothing here may look shareable).
_NOT_RETURNED = HOP_BY_HOP | frozenset(
    {"content-length", "content-encoding", "set-cookie", "mcp-session-id", "www-authenticate", "server",
     "date", "clear-site-data", "strict-transport-security", "content-security-policy",
     "content-security-policy-report-only", "x-content-type-options", "location", "refresh", "link",
     "cache-control", "expires", "etag", "last-modified", "age", "vary"}
)
_NOT_RETURNED_PREFIXES = ("access-control-",)
# Our own instead: a relayed answer never runs as a page on the console's origin, nor is cached.
_ADDED_TO_RESPONSES: RawHeaders = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"sandbox; default-src 'none'"),
    (b"cache-control", b"no-store"),
]


def forward_headers(
    incoming: Incoming, *, server_headers: Mapping[str, str], upstream_session_id: str | None,
    credential: str, caller: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """Headers for the upstream hop: client headers minus credentials and hop-by-hop ones.

    A client that echoes its own token elsewhere (a User-Agent, a custom header) gets it replaced
    by the display prefix: no token ever reaches an upstream. ``caller`` are the headers that say
    who calls (``Admission.caller_headers``: the signed identity, the caller's own connected
    account): a client header of any of their names never crosses.
    """
    connection_listed = {
        token.strip().lower()
        for k, v in incoming.headers if k == "connection"
        for token in v.split(",")
    }
    configured = {name.lower() for name in server_headers} | {name.lower() for name, _ in caller}
    credentials = credential_header_names()
    propagated = spans.upstream_headers()
    if propagated:  # the gateway span's context replaces the client's (gateway/pipeline/spans.py)
        configured |= TRACE_HEADERS
    headers = [
        (k, v) for k, v in incoming.headers
        if k not in _NOT_FORWARDED and k not in credentials and k not in connection_listed
        and k not in configured
    ]
    # The token, or its JWT without the gth_ prefix (which re-adding makes valid again).
    bare = credential.removeprefix(TOKEN_PREFIX)
    if bare and any(bare in v for _, v in headers):  # rare: decode the prefix only then
        masked = token_display_prefix(credential).rstrip("…")  # header values must stay latin-1
        headers = [(k, v.replace(credential, masked).replace(bare, masked)) for k, v in headers]
    # Identity, so SSE events can be read (and filtered) as they arrive.
    headers.append(("accept-encoding", "identity"))
    headers.extend(server_headers.items())
    headers.extend(caller)
    if upstream_session_id:
        headers.append(("mcp-session-id", upstream_session_id))
    headers.extend(propagated)
    return headers


def response_headers(upstream: httpx.Response, *, session_id: str | None) -> RawHeaders:
    connection_listed = {t.strip().lower() for t in upstream.headers.get("connection", "").split(",")}
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in upstream.headers.multi_items()
        if k.lower() not in _NOT_RETURNED and k.lower() not in connection_listed
        and not k.lower().startswith(_NOT_RETURNED_PREFIXES)
    ]
    headers.extend(_ADDED_TO_RESPONSES)
    if session_id:
        headers.append((b"mcp-session-id", session_id.encode("latin-1")))
    return headers


def upstream_url(base: str, client_query: str, *, credential: str) -> str:
    """The upstream URL with the client's query parameters (minus any credential) appended."""
    extra = strip_query_credentials(client_query, credential=credential)
    if not extra:
        return base
    parts = urlsplit(base)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


async def open_upstream(
    *, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None, bound_headers: bool = True
) -> httpx.Response:
    """Send the request and wait for response headers (bounded unless told otherwise).

    The body is streamed later. ``bound_headers=False`` is for standalone event streams: SDK
    servers send their headers only with the first event, which may be a long time coming.
    """
    client = upstream_client()
    request = client.build_request(method, url, headers=headers, content=body or None)
    dialled = time.monotonic()
    try:
        # asyncio.timeout, not wait_for: no task of its own, and a cancel that comes as the
        # headers arrive is not lost (3.11's wait_for returns the result instead).
        async with asyncio.timeout(settings.UPSTREAM_TIMEOUT_SECONDS if bound_headers else None):
            return await client.send(request, stream=True)
    except (TimeoutError, httpx.HTTPError) as exc:
        if _is_timeout(exc):
            raise UpstreamTimeout("The upstream server did not answer in time.") from exc
        raise UpstreamUnavailable("The upstream server could not be reached.") from exc
    finally:
        request_metrics.upstream_waited(time.monotonic() - dialled)


def _is_timeout(exc: BaseException) -> bool:
    # httpx-aiohttp maps every aiohttp connection error (even "connection refused") to
    # ConnectTimeout, so the original exception decides.
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, aiohttp.ServerTimeoutError)
    if isinstance(cause, TimeoutError):
        return True
    return isinstance(exc, (TimeoutError, httpx.TimeoutException))


