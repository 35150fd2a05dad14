"""The MCP gateway: token checks, session binding, tool scope and unbuffered streaming to upstreams.

Routes (``gateway.asgi``, plain ASGI callables mounted ahead of Django) come from the transport
registry: each transport names its flow module, ``gateway.flows.streamable`` (``/mcp/<server>/``
and ``/mcp/``, both protocol generations) and ``gateway.flows.sse`` (``/sse/<server>/``,
``/messages/<server>/``). Every flow opens with the one admission step of ``pipeline``
(``admission`` states its rules, answered from the per-process caches of ``hot`` or, on a
miss, in one database hop) and relays with ``relay`` (``upstream_answers`` judges an
upstream's status and error bodies first; ``responder`` sends the one response); ``context`` is what a request
accumulates and whom its audit rows name; ``credentials`` the registry of the ways a client
presents its token; ``errors`` the one refusal type and its rendering, ``refusals`` their audit;
``protocol`` the JSON-RPC reading and header/body agreement; ``policy`` tool scope; ``sse``
event parsing; ``sessions`` the session bindings; ``services`` ends sessions (status, audit event and
``outbox`` row in one transaction; ``outbox`` delivers the upstream DELETEs); ``watch`` the
≤0.4 s re-checks of open streams (at once on a change); ``pinning`` approved tool definitions;
``exchange`` the HTTP plumbing of each hop (the pooled client is ``upstreams.http``).

Upstream transport, chosen by measurement (``bench/gateway/run.py``: concurrency 16, 2000
``tools/call`` POSTs per run, a fast upstream, 2-core machine): httpx's API over
``httpx_aiohttp.AiohttpTransport``. With it the gateway reached 182 req/s on JSON answers (22.6 %
of direct, p50 64 ms) and 122 req/s on SSE answers (12.7 %); httpx 0.28's default transport
reached 58 req/s (7.2 %, p50 227 ms) and 38 req/s (3.9 %). Most of the remaining gap is daphne
itself on that machine, not the proxy path.
"""
