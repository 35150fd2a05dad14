"""Ask upstream MCP servers for their live ``tools/list``, so the issue form can offer real names.

Best effort by design: a short deadline per server, every failure becomes a readable reason and
the form falls back to a free-text tools field. Uses the official ``mcp`` SDK client, which
speaks both protocol generations and the legacy HTTP+SSE transport (each transport's
``open_sdk_client`` in ``upstreams.transports``). Results are cached briefly
(tool names are not secrets) so a form re-rendered after a validation error stays fast.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
from django.core.cache import cache

from upstreams.models import UpstreamServer
from upstreams.pinning import definition_of
from upstreams.target import UpstreamTarget, target_of

if TYPE_CHECKING:  # the SDK costs about a second of start-up; transports import it when used
    from mcp import Client

logger = logging.getLogger("gatehouse.tokens")

DEFAULT_TIMEOUT_SECONDS = 4.0
_CACHE_SECONDS = 60
_MAX_PAGES = 20


@dataclass(frozen=True)
class UpstreamTool:
    name: str
    description: str = ""
    # The pinned fields of its ``tools/list`` entry (``upstreams.pinning.definition_of``).
    definition: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ToolListing:
    """The tools of one server, or why they could not be read (``tools`` is then empty)."""

    server: str
    tools: list[UpstreamTool] = field(default_factory=list)
    error: str = ""

    @property
    def reachable(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class _Target:
    target: UpstreamTarget
    cache_key: str


def _target(server: UpstreamServer) -> _Target | ToolListing:
    try:
        target = target_of(server)
    except RuntimeError:
        return ToolListing(server=server.name, error="its stored credentials cannot be decrypted")
    # Keyed on the configuration too, so an edited server is asked again at once.
    fingerprint = hashlib.sha256(
        f"{server.url}\0{server.url_encrypted}\0{server.transport}\0{server.headers_encrypted}".encode()
    ).hexdigest()[:32]
    return _Target(target=target, cache_key=f"gatehouse:upstream-tools:{server.pk}:{fingerprint}")


async def _fetch(target: UpstreamTarget, timeout: float) -> list[UpstreamTool]:
    tools: list[UpstreamTool] = []
    async with target.transport.open_sdk_client(target.url, target.headers, timeout) as client:
        await _collect(client, tools)
    return tools


async def _collect(client: Client, tools: list[UpstreamTool]) -> None:
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        result = await client.list_tools(cursor=cursor)
        tools.extend(
            UpstreamTool(
                name=t.name,
                description=(t.description or "").strip(),
                definition=definition_of(t.model_dump(by_alias=True, mode="json", exclude_none=True)),
            )
            for t in result.tools
        )
        cursor = result.next_cursor
        if not cursor:
            return


def _reason(exc: BaseException) -> str:
    """A short, secret-free reason for the form (no URLs: they may carry credentials)."""
    if isinstance(exc, TimeoutError):
        return "it did not answer in time"
    if isinstance(exc, BaseExceptionGroup):
        return _reason(exc.exceptions[0])
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"it answered HTTP {exc.response.status_code}"
    if isinstance(exc, (httpx2.ConnectError, OSError)):
        return "it could not be reached"
    return "it did not answer like an MCP server"


async def _list_one(target: _Target, timeout: float) -> ToolListing:
    try:
        with anyio.fail_after(timeout):
            tools = await _fetch(target.target, timeout)
    except Exception as exc:  # noqa: BLE001 - best effort: any failure becomes a reason on the form
        logger.info(
            "upstream tools/list failed",
            extra={"server": target.target.name, "error_type": type(exc).__name__},
        )
        return ToolListing(server=target.target.name, error=_reason(exc))
    unique = {t.name: t for t in tools if t.name}
    return ToolListing(server=target.target.name, tools=sorted(unique.values(), key=lambda t: t.name))


def list_upstream_tools(
    *, servers: Sequence[UpstreamServer], timeout: float = DEFAULT_TIMEOUT_SECONDS, fresh: bool = False
) -> dict[str, ToolListing]:
    """Live tool lists of ``servers``, fetched concurrently; blocks at most about ``timeout``.

    ``fresh``: ask the upstream even when a listing is cached (approving tools needs the current
    definitions).

    Call from sync code only (a view or command): it runs its own event loop.
    """
    results: dict[str, ToolListing] = {}
    pending: list[_Target] = []
    for server in servers:
        target = _target(server)
        if isinstance(target, ToolListing):
            results[server.name] = target
            continue
        cached = None if fresh else cache.get(target.cache_key)
        if isinstance(cached, ToolListing):
            results[server.name] = cached
        else:
            pending.append(target)

    async def gather() -> None:
        async def one(target: _Target) -> None:
            results[target.target.name] = await _list_one(target, timeout)

        async with anyio.create_task_group() as group:
            for target in pending:
                group.start_soon(one, target)

    if pending:
        anyio.run(gather)
        for target in pending:
            listing = results[target.target.name]
            if listing.reachable:
                cache.set(target.cache_key, listing, _CACHE_SECONDS)
    return {server.name: results[server.name] for server in servers}
