"""The MCP gateway: token checks, session binding, tool scope and unbuffered streaming to upstreams.

Routes (``gateway.asgi``, plain ASGI callables mounted ahead of Django): ``/mcp/<server>/`` and
``/mcp/`` (Streamable HTTP, both protocol generations), ``/sse/<server>/`` and
``/messages/<server>/`` (legacy HTTP+SSE). ``gateway.proxy`` holds the request flows;
``admission`` the one database hop per request; ``auth`` credential extraction; ``protocol`` the
JSON-RPC reading and header/body agreement; ``policy`` tool scope; ``sse`` event parsing;
``sessions`` the session bindings; ``watch`` the ≤0.5 s re-checks of open streams; ``errors``
the single mapping of refusals to HTTP; ``upstream_http`` the shared upstream client.

Upstream transport, chosen by measurement (``bench/gateway/run.py``: concurrency 16, 2000
``tools/call`` POSTs per run, a fast upstream, 2-core machine): httpx's API over
``httpx_aiohttp.AiohttpTransport``. With it the gateway reached 182 req/s on JSON answers (22.6 %
of direct, p50 64 ms) and 122 req/s on SSE answers (12.7 %); httpx 0.28's default transport
reached 58 req/s (7.2 %, p50 227 ms) and 38 req/s (3.9 %). Most of the remaining gap is daphne
itself on that machine, not the proxy path.
"""
