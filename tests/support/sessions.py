"""Gateway session rows for tests that need a session without driving a real MCP handshake."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.utils import timezone

from gateway.models import SessionBinding
from tokens.models import Token
from upstreams.models import UpstreamServer


def make_session(
    *,
    token: Token,
    server: UpstreamServer,
    idle: timedelta = timedelta(0),
    age: timedelta | None = None,
    upstream_session_id: str | None = None,
    client_ip: str = "192.0.2.10",
    user_agent: str = "pytest-mcp-client/1.0",
) -> SessionBinding:
    """An active session last seen ``idle`` ago and started ``age`` ago (default: same as idle)."""
    now = timezone.now()
    session = SessionBinding.objects.create(
        id=secrets.token_urlsafe(24),
        token=token,
        server=server,
        upstream_session_id=upstream_session_id if upstream_session_id is not None else secrets.token_hex(16),
        protocol_version="2025-06-18",
        client_ip=client_ip,
        user_agent=user_agent,
        last_seen_at=now - idle,
    )
    # created_at is auto_now_add: backdate it with an UPDATE.
    SessionBinding.objects.filter(pk=session.pk).update(created_at=now - (age if age is not None else idle))
    session.refresh_from_db()
    return session
