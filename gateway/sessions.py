"""Session bindings: the gateway's own Mcp-Session-Id, mapped to the upstream's and bound to a token.

The mapping lives in the database, so any gateway instance can serve any request of a session.
These are plain sync functions; the ASGI layer calls them through one ``sync_to_async`` hop.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from audit import events
from audit.services import record_later
from gatehouse.secrets_mask import mask_secrets
from gateway.errors import SessionNotFound, UpstreamUnavailable
from gateway.models import UPSTREAM_SESSION_ID_MAX, SessionBinding
from tokens.services import AuthenticatedToken

# last_seen_at is written at most this often per session, to keep writes off the hot path.
TOUCH_INTERVAL = timedelta(seconds=15)


@dataclass(frozen=True)
class Binding:
    id: str
    upstream_session_id: str
    protocol_version: str
    transport: str


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def find_binding(*, session_id: str, token: AuthenticatedToken, server_id: int, transport: str) -> Binding:
    """The active binding for this token and server; ``SessionNotFound`` for anything else.

    Unknown, ended, foreign-token and other-server sessions all look the same to the client.
    """
    row = (
        SessionBinding.objects.filter(pk=session_id[:64])
        .only("id", "token_id", "server_id", "status", "transport", "upstream_session_id",
              "protocol_version", "last_seen_at")
        .first()
    )
    if row is None:
        raise _not_found("unknown")
    if row.token_id != token.token_id:
        raise _not_found("foreign_token")
    if row.server_id != server_id or row.transport != transport:
        raise _not_found("other_server")
    if row.status != SessionBinding.Status.ACTIVE:
        raise _not_found(f"ended:{row.status}")
    now = timezone.now()
    if row.last_seen_at < now - TOUCH_INTERVAL:
        SessionBinding.objects.filter(pk=row.pk).update(last_seen_at=now)
    return Binding(
        id=row.pk,
        upstream_session_id=row.upstream_session_id,
        protocol_version=row.protocol_version,
        transport=row.transport,
    )


def _not_found(reason: str) -> SessionNotFound:
    return SessionNotFound("Unknown or ended session; start a new one.", reason=reason)


def create_binding(
    *,
    token: AuthenticatedToken,
    server_id: int,
    server_name: str,
    upstream_session_id: str,
    protocol_version: str,
    transport: str,
    client_ip: str | None,
    user_agent: str,
) -> Binding:
    """Mint the gateway's session id for a new upstream session and audit ``session.created``."""
    if len(upstream_session_id) > UPSTREAM_SESSION_ID_MAX:
        raise UpstreamUnavailable(
            f"The upstream's session id is longer than {UPSTREAM_SESSION_ID_MAX} characters."
        )
    now = timezone.now()
    user_agent = mask_secrets(user_agent)  # shown in the console and the API: no token in it
    row = SessionBinding.objects.create(
        id=new_session_id(),
        token_id=token.token_id,
        server_id=server_id,
        upstream_session_id=upstream_session_id,
        protocol_version=protocol_version[:32],
        transport=transport,
        client_ip=client_ip or None,
        user_agent=user_agent[:300],
        last_seen_at=now,
    )
    record_later(
        event=events.SESSION_CREATED,
        actor=token.display_prefix,
        token_jti=token.jti,
        owner=token.owner_username,
        server=server_name,
        session_id=row.pk,
        client_ip=client_ip,
        user_agent=user_agent,
        detail={"transport": transport, "protocol_version": protocol_version},
    )
    return Binding(
        id=row.pk, upstream_session_id=row.upstream_session_id, protocol_version=row.protocol_version,
        transport=transport,
    )


def set_protocol_version(*, session_id: str, protocol_version: str) -> None:
    """Record the version the upstream actually negotiated (known only once its answer streams by)."""
    SessionBinding.objects.filter(pk=session_id).exclude(protocol_version=protocol_version).update(
        protocol_version=protocol_version[:32]
    )


def active_session_ids(session_ids: Iterable[str]) -> set[str]:
    ids = list(session_ids)
    if not ids:
        return set()
    return set(
        SessionBinding.objects.filter(pk__in=ids, status=SessionBinding.Status.ACTIVE)
        .values_list("pk", flat=True)
    )
