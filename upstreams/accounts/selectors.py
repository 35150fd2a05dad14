"""Reads of connected accounts: a person's own (My access) and everyone's (staff). No value ever."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User

from upstreams.accounts.models import ConnectedAccount
from upstreams.models import UpstreamServer


@dataclass(frozen=True)
class AccountRow:
    """One server that takes personal credentials, and where this person stands with it."""

    server: str
    kind: str
    connect: str  # "paste" or "provider" (``upstreams.user_credentials``)
    header: str
    # "connected", "broken" (connect again) or "" (not connected).
    status: str
    broken_reason: str = ""
    connected_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Connection:
    """Who connected what (staff view): never the value."""

    user: str
    server: str
    kind: str
    status: str
    connected_at: datetime
    refreshed_at: datetime | None


def connect_url() -> str:
    """Where a person connects their accounts: My access, at the public URL."""
    return f"{settings.PUBLIC_URL}/console/me/"


def is_broken(*, user_id: int, server_id: int) -> bool:
    """Whether this person's connection was refused a refresh (they must connect again)."""
    return ConnectedAccount.objects.filter(user_id=user_id, server_id=server_id,
                                           status=ConnectedAccount.Status.BROKEN).exists()


def accounts_of(user: User) -> list[AccountRow]:
    """Every enabled server that takes a personal credential, with this person's state for it."""
    mine = {a.server_id: a for a in ConnectedAccount.objects.filter(user=user)}
    rows = []
    for server in UpstreamServer.objects.filter(enabled=True).exclude(user_credential=""):
        kind = server.user_credential_kind
        assert kind is not None
        account = mine.get(server.pk)
        rows.append(AccountRow(
            server=server.name, kind=kind.name, connect=kind.connect, header=server.user_credential_header,
            status=account.status if account else "", broken_reason=account.broken_reason if account else "",
            connected_at=account.connected_at if account else None,
            expires_at=account.expires_at if account else None,
        ))
    return rows


def connections(*, server: UpstreamServer | None = None) -> list[Connection]:
    found = (ConnectedAccount.objects.select_related("user", "server")
             .order_by("server__name", "user__username"))
    if server is not None:
        found = found.filter(server=server)
    return [Connection(user=a.user.get_username(), server=a.server.name, kind=a.kind, status=a.status,
                       connected_at=a.connected_at, refreshed_at=a.refreshed_at) for a in found]
