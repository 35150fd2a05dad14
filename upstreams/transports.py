"""The transport registry: every way Gatehouse can talk to an upstream MCP server, one entry each.

A transport entry says everything the rest of the code needs to know about it: the name stored on
``UpstreamServer.transport`` and typed into ``add_server --transport``, the gateway path clients
use, how sessions work (an ``Mcp-Session-Id`` header that a DELETE ends upstream, or the event
stream itself being the session), the client snippets, how the console lists the server's tools
(an MCP SDK client), and which gateway module serves it (``flow``, a dotted path: the gateway
sits above this app, so it is named, never imported here).

Adding a transport is one ``register(Transport(...))`` call here plus its flow module under
``gateway/flows/`` (see docs/architecture.md, "Adding a transport").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mcp import Client

SdkClientOpener = Callable[[str, "Mapping[str, str]", float], AbstractAsyncContextManager["Client"]]


@dataclass(frozen=True)
class Transport:
    name: str
    label: str
    # Clients reach a server at /<path_prefix>/<server>/.
    path_prefix: str
    # "header": the upstream mints an Mcp-Session-Id, a DELETE ends it there.
    # "stream": the open event stream is the session; nothing to end upstream when it closes.
    session: Literal["header", "stream"]
    # supergateway's flag and ``claude mcp add --transport`` value for the snippets.
    bridge_flag: str
    claude_transport: str
    # Whether the ``?key=`` URL works for every request a client of this transport sends.
    query_key_works: bool
    # The gateway module that serves it: it exposes ``routes`` (URL patterns of ASGI apps).
    flow: str
    open_sdk_client: SdkClientOpener
    # A transport Gatehouse hosts itself (stdio): the gateway dials its servers where ``locate``
    # says (the stdio runner: URL and the headers that get in), speaking the transport named by
    # ``served_as``, and clients use that transport's endpoint.
    locate: Callable[[str], tuple[str, Mapping[str, str]]] | None = None
    served_as: str = ""

    @property
    def hosted(self) -> bool:
        return self.locate is not None

    @property
    def endpoint_name(self) -> str:
        """The transport whose gateway endpoint serves this one's servers (itself, unless hosted)."""
        return self.served_as or self.name

    def client_path(self, server: str) -> str:
        return f"/{self.path_prefix}/{server}/"

    @property
    def ends_upstream_session(self) -> bool:
        """Whether ending a gateway session means a DELETE to the upstream."""
        return self.session == "header"


class UnknownTransport(ValueError):
    pass


_registry: dict[str, Transport] = {}


def register(transport: Transport) -> Transport:
    if transport.name in _registry:
        raise ValueError(f"Transport {transport.name!r} is registered twice.")
    _registry[transport.name] = transport
    return transport


def unregister(name: str) -> None:
    """For tests that register a throwaway transport."""
    _registry.pop(name, None)


def get(name: str) -> Transport:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownTransport(
            f"Transport must be one of {', '.join(_registry)} (got {name!r})."
        ) from None


def all_transports() -> list[Transport]:
    return list(_registry.values())


def names() -> list[str]:
    return list(_registry)


def choices() -> list[tuple[str, str]]:
    """Model and form choices; a callable so a new entry needs no migration of the field."""
    return [(t.name, t.label) for t in _registry.values()]


# --- the SDK clients the console uses to list an upstream's tools ------------------------------
# Imported lazily: the mcp SDK is only needed when a console page asks an upstream for its tools.

_CLIENT_NAME = "gatehouse-console"


@asynccontextmanager
async def _streamable_sdk_client(
    url: str, headers: Mapping[str, str], timeout: float
) -> AsyncIterator[Client]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import Implementation

    async with httpx2.AsyncClient(headers=dict(headers), timeout=httpx2.Timeout(timeout)) as http:
        client = Client(
            streamable_http_client(url, http_client=http),
            client_info=Implementation(name=_CLIENT_NAME, version="1.0"),
            cache=None,
            read_timeout_seconds=timeout,
        )
        async with client:
            yield client


@asynccontextmanager
async def _sse_sdk_client(url: str, headers: Mapping[str, str], timeout: float) -> AsyncIterator[Client]:
    from mcp import Client
    from mcp.client.sse import sse_client
    from mcp.types import Implementation

    client = Client(
        sse_client(url, headers=dict(headers), timeout=timeout, sse_read_timeout=timeout),
        mode="legacy",
        client_info=Implementation(name=_CLIENT_NAME, version="1.0"),
        cache=None,
    )
    async with client:
        yield client


STREAMABLE = register(
    Transport(
        name="streamable",
        label="Streamable HTTP",
        path_prefix="mcp",
        session="header",
        bridge_flag="--streamableHttp",
        claude_transport="http",
        query_key_works=True,
        flow="gateway.flows.streamable",
        open_sdk_client=_streamable_sdk_client,
    )
)
SSE = register(
    Transport(
        name="sse",
        label="HTTP + SSE (legacy)",
        path_prefix="sse",
        session="stream",
        bridge_flag="--sse",
        claude_transport="sse",
        # Legacy clients post to the ``endpoint`` URL the stream announced, which has no token.
        query_key_works=False,
        flow="gateway.flows.sse",
        open_sdk_client=_sse_sdk_client,
    )
)


def _locate_on_runner(server: str) -> tuple[str, Mapping[str, str]]:
    from upstreams.stdio.command import runner_endpoint

    return runner_endpoint(server)


# A stdio server, run by Gatehouse's stdio runner (``upstreams.stdio``), which serves it to the
# gateway as Streamable HTTP: clients use /mcp/<server>/ and every snippet as for STREAMABLE.
STDIO = register(
    Transport(
        name="stdio",
        label="stdio (run by Gatehouse)",
        path_prefix=STREAMABLE.path_prefix,
        session=STREAMABLE.session,
        bridge_flag=STREAMABLE.bridge_flag,
        claude_transport=STREAMABLE.claude_transport,
        query_key_works=STREAMABLE.query_key_works,
        flow=STREAMABLE.flow,
        open_sdk_client=_streamable_sdk_client,
        locate=_locate_on_runner,
        served_as=STREAMABLE.name,
    )
)
DEFAULT = STREAMABLE


