"""The baseline: a bare token-checking proxy in about 80 lines, under the same ASGI server.

It checks ``Authorization: Bearer <JWT>`` (HS256, ``BENCH_BARE_SECRET``: signature, ``exp``) and
forwards the request with one shared aiohttp session to ``BENCH_UPSTREAM``, streaming the answer
back. No database, no scopes, no sessions, no audit, no logging: what any token-checking proxy
must pay at least. Gatehouse's goal is 90 % of its requests/s.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import jwt

SECRET = os.environ.get("BENCH_BARE_SECRET", "bench-secret-of-at-least-thirty-two-bytes")
UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9")
_HOP = {b"host", b"authorization", b"connection", b"content-length", b"transfer-encoding"}
_session: aiohttp.ClientSession | None = None


def _client() -> aiohttp.ClientSession:
    global _session
    if _session is None:
        _session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=10_000),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, connect=10),
        )
    return _session


async def _plain(send: Any, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/health":
        await _plain(send, 200, b'{"status":"ok"}')
        return
    headers = dict(scope["headers"])
    scheme, _, token = headers.get(b"authorization", b"").decode().partition(" ")
    try:
        if scheme.lower() != "bearer":
            raise jwt.InvalidTokenError("no bearer token")
        jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.InvalidTokenError:
        await _plain(send, 401, b'{"error":"invalid_token"}')
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    forward = {k.decode(): v.decode() for k, v in scope["headers"] if k not in _HOP}
    url = UPSTREAM + scope["path"]
    if scope.get("query_string"):
        url += "?" + scope["query_string"].decode()
    async with _client().request(scope["method"], url, data=body or None, headers=forward) as upstream:
        await send(
            {
                "type": "http.response.start",
                "status": upstream.status,
                "headers": [
                    (k.lower().encode(), v.encode())
                    for k, v in upstream.headers.items()
                    if k.lower().encode() not in _HOP
                ],
            }
        )
        async for chunk in upstream.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def token(ttl: int = 7200) -> str:
    """A token this proxy accepts."""
    import time

    return jwt.encode({"sub": "bench", "exp": int(time.time()) + ttl}, SECRET, algorithm="HS256")
