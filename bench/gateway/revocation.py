"""Revocation across two Gatehouse instances on one database: how soon each instance refuses.

For each of ``n`` tokens: a session and an open GET stream on instance B, both instances warmed
(the verdict is in their caches), then the token is revoked through A's REST API. From A's
answer on (the revocation is committed by then) it measures:

- whether A's very next request with the token is refused (the revoking instance);
- how long until B refuses it (requests every 2 ms), the revocation-to-401 latency elsewhere;
- how long until B closes the open stream, the revocation-to-stream-close latency.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from bench.gateway.load import JSON, STREAM, open_session, pct

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {}}}


async def _status(session: aiohttp.ClientSession, url: str, token: str) -> int:
    async with session.post(url, json=CALL, headers={**JSON, "Authorization": f"Bearer {token}"}) as r:
        await r.read()
        return r.status


async def _watch_close(response: aiohttp.ClientResponse) -> float:
    async for _ in response.content.iter_any():
        pass
    return time.perf_counter()


async def measure(a_url: str, b_url: str, *, api_key: str, n: int = 200) -> dict[str, Any]:
    api = {"Authorization": f"Bearer {api_key}"}
    to_401: list[float] = []
    to_close: list[float] = []
    admitted_on_a = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        for _ in range(n):
            async with session.post(
                f"{a_url}/api/v1/tokens/",
                headers=api,
                json={"name": "bench-revoke", "servers": ["bench"], "ttl": "1h"},
            ) as r:
                minted = await r.json()
                assert r.status == 201, minted
            token, token_id = minted["token"], minted["id"]
            mcp_b = f"{b_url}/mcp/bench/"
            mcp_a = f"{a_url}/mcp/bench/"
            auth = {"Authorization": f"Bearer {token}"}
            sid = await open_session(session, mcp_b, auth)
            stream = await session.get(mcp_b, headers={**STREAM, **auth, "Mcp-Session-Id": sid or ""})
            assert stream.status == 200, stream.status
            await stream.content.readuntil(b"\n\n")
            closed = asyncio.ensure_future(_watch_close(stream))
            assert await _status(session, mcp_a, token) == 200
            assert await _status(session, mcp_b, token) == 200
            async with session.post(
                f"{a_url}/api/v1/tokens/{token_id}/revoke/", headers=api, json={"reason": "bench"}
            ) as r:
                await r.read()
                assert r.status == 200, r.status
            done = time.perf_counter()
            admitted_on_a += await _status(session, mcp_a, token) != 401
            while await _status(session, mcp_b, token) != 401:
                await asyncio.sleep(0.002)
            to_401.append(time.perf_counter() - done)
            try:
                to_close.append(max(0.0, await asyncio.wait_for(closed, timeout=10) - done))
            finally:
                stream.close()
    return {
        "tokens": n,
        "revoking_instance_admitted_after_revoke": admitted_on_a,
        "to_401_p50_ms": round(pct(to_401, 0.5) * 1000, 1),
        "to_401_p99_ms": round(pct(to_401, 0.99) * 1000, 1),
        "to_stream_close_p50_ms": round(pct(to_close, 0.5) * 1000, 1),
        "to_stream_close_p99_ms": round(pct(to_close, 0.99) * 1000, 1),
    }
