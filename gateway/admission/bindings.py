"""Session bindings: the gateway's own Mcp-Session-Id, mapped to the upstream's and bound to a token.

The mapping lives in the database, so any gateway instance can serve any request of a session.
These are plain sync functions; the ASGI layer calls them through one ``sync_to_async`` hop.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from audit import events
from audit.services import record_later
from core import changes
from core.secrets_mask import mask_secrets
from gateway.models import UPSTREAM_SESSION_ID_MAX, SessionBinding
from gateway.request.refusals import SessionNotFound, UpstreamUnavailable
from tokens.services import AuthenticatedToken


@dataclass(frozen=True)
class Binding:
    id: str
    upstream_session_id: str
    protocol_version: str
    transport: str


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Bound:
    """A session's row as admission judges it (and ``gateway.admission.caches`` caches it while active)."""

    id: str
    token_id: int
    server_id: int
    transport: str
    status: str
    upstream_session_id: str
    protocol_version: str

    @property
    def active(self) -> bool:
        return self.status == SessionBinding.Status.ACTIVE


def load_binding(session_id: str) -> Bound | None:
    """The session's row, or None: one indexed query."""
    row = (
        SessionBinding.objects.filter(pk=session_id[:64])
        .only("id", "token_id", "server_id", "status", "transport", "upstream_session_id", "protocol_version")
        .first()
    )
    if row is None:
        return None
    return Bound(
        id=row.pk, token_id=row.token_id, server_id=row.server_id, transport=row.transport,
        status=str(row.status), upstream_session_id=row.upstream_session_id,
        protocol_version=row.protocol_version,
    )


def check_binding(
    bound: Bound | None, *, token: AuthenticatedToken, server_id: int, transport: str
) -> Binding:
    """The binding if ``bound`` is active and belongs to this token and server; ``SessionNotFound``
    for anything else. Unknown, ended, foreign-token and other-server sessions all look the same
    to the client."""
    if bound is None:
        raise session_not_found("unknown")
    if bound.token_id != token.token_id:
        raise session_not_found("foreign_token")
    if bound.server_id != server_id or bound.transport != transport:
        raise session_not_found("other_server")
    if not bound.active:
        raise session_not_found(f"ended:{bound.status}")
    return Binding(
        id=bound.id, upstream_session_id=bound.upstream_session_id,
        protocol_version=bound.protocol_version, transport=bound.transport,
    )


def touch_many(touched: Mapping[str, datetime]) -> None:
    """Write sessions' last-seen times noted by requests (``gateway.admission.caches``), one UPDATE per second
    they fall in; never moves a time backwards."""
    by_second: dict[datetime, list[str]] = {}
    for session_id, at in touched.items():
        by_second.setdefault(at.replace(microsecond=0), []).append(session_id)
    for at, ids in by_second.items():
        SessionBinding.objects.filter(pk__in=ids, last_seen_at__lt=at).update(last_seen_at=at)


def session_not_found(reason: str) -> SessionNotFound:
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
    if SessionBinding.objects.filter(pk=session_id).exclude(protocol_version=protocol_version).update(
        protocol_version=protocol_version[:32]
    ):
        changes.publish(changes.SESSION, [session_id])  # admission's cached binding carries it


def active_session_ids(session_ids: Iterable[str]) -> set[str]:
    ids = list(session_ids)
    if not ids:
        return set()
    return set(
        SessionBinding.objects.filter(pk__in=ids, status=SessionBinding.Status.ACTIVE)
        .values_list("pk", flat=True)
    )
