"""``UpstreamTarget``: what it takes to dial one upstream — its URL and decrypted headers.

The one place stored upstream credentials are decrypted for use. The gateway's admission, the
session sweep's upstream DELETEs and the console's live tool listing all build their target here.
Decryption is cached per process, keyed by the ciphertext, so the hot path pays for Fernet once
per configuration, and an edited server (new ciphertext) takes effect at once on every process
without any invalidation message. A target that cannot be decrypted (the encryption key changed)
raises ``RuntimeError`` saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from types import MappingProxyType

from core import encryption
from upstreams import transports, user_credentials
from upstreams.models import DEFAULT_IDENTITY_HEADER, ApprovedTool, UpstreamServer
from upstreams.pinning import ToolPins

# Columns a target needs: admission reads only these on its one query.
TARGET_FIELDS = (
    "id", "name", "url", "url_encrypted", "transport", "headers_encrypted", "forward_identity",
    "identity_header", "pin_tools", "user_credential", "user_credential_header",
)


@dataclass(frozen=True)
class UpstreamTarget:
    id: int
    name: str
    url: str
    transport: transports.Transport
    # Never logged or rendered: these are the upstream's credentials.
    headers: Mapping[str, str]
    # The redacted URL (``UpstreamServer.url``, never a credential): an identity assertion's ``aud``.
    public_url: str = ""
    # Identity to upstreams: sign who calls into ``identity_header`` (``tokens.assertions``).
    forward_identity: bool = False
    identity_header: str = DEFAULT_IDENTITY_HEADER
    # Tool pinning (``upstreams.pinning``): None when the server does not pin its tools.
    pins: ToolPins | None = None
    # Connected accounts: each caller's own credential goes in ``user_credential_header``
    # (``upstreams.user_credentials``); None when the server's own headers are all it takes.
    user_credential: user_credentials.UserCredentialKind | None = None
    user_credential_header: str = ""

    def __repr__(self) -> str:  # the URL may carry credentials too
        return f"UpstreamTarget(name={self.name!r}, transport={self.transport.name!r})"


@lru_cache(maxsize=256)
def _headers(ciphertext: str) -> Mapping[str, str]:
    decrypted = encryption.decrypt_json(ciphertext)
    return MappingProxyType({str(k): str(v) for k, v in decrypted.items()})


def target_of(server: UpstreamServer) -> UpstreamTarget:
    """The dialable form of ``server``. Raises ``RuntimeError`` when its secrets cannot be decrypted.

    A hosted server (stdio) is dialled where its transport locates it: the runner, with its key.
    """
    transport = transports.get(server.transport)
    if transport.locate is not None:
        url, headers = transport.locate(server.name)
    else:
        url = server.target_url
        headers = _headers(server.headers_encrypted) if server.headers_encrypted else MappingProxyType({})
    return UpstreamTarget(
        id=server.pk,
        name=server.name,
        url=url,
        transport=transport,
        headers=headers,
        public_url=server.url,
        forward_identity=server.forward_identity,
        identity_header=server.identity_header or DEFAULT_IDENTITY_HEADER,
        user_credential=server.user_credential_kind,
        user_credential_header=server.user_credential_header,
    )


def enabled_target(name: str) -> UpstreamTarget | None:
    """The target of the enabled server ``name``, or None: one indexed query.

    The row is read each time (not cached by name): a disabled or re-created server takes
    effect at once, and a cached row id would go stale and break session bindings.
    """
    row = UpstreamServer.objects.filter(name=name, enabled=True).only(*TARGET_FIELDS).first()
    if row is None:
        return None
    target = target_of(row)
    return replace(target, pins=tool_pins(row.pk)) if row.pin_tools else target


def tool_pins(server_id: int) -> ToolPins:
    """A pinned server's approved and last seen hashes: one query, on admission's hop."""
    rows = ApprovedTool.objects.filter(server_id=server_id).values_list("name", "hash", "last_seen_hash")
    approved: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name, approved_hash, seen_hash in rows:
        approved[name] = approved_hash
        if seen_hash:
            seen[name] = seen_hash
    return ToolPins(approved=MappingProxyType(approved), last_seen=MappingProxyType(seen))
