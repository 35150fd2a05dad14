"""Connected accounts: connect, disconnect, and the credential the gateway sends for a person.

Every change is audited (``account.connected|refreshed|refresh_failed|disconnected``) naming the
person, the server and the kind, never a value; every change publishes on the change feed (the
model's save signal, ``upstreams.apps``), so a gateway forgets a cached credential at once here
and within a poll elsewhere. Refreshing is one at a time per account: a row lock on PostgreSQL
across instances (``select_for_update``), a lock per account within a process (SQLite ignores
row locks), and whoever waited reads the fresh row instead of refreshing again (a rotated
refresh token used twice would be refused and break the connection).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from audit.services import record
from core import encryption
from upstreams import user_credentials
from upstreams.accounts import provider
from upstreams.accounts.models import ConnectedAccount
from upstreams.exceptions import AccountError, ProviderRefused, ProviderUnreachable
from upstreams.models import UpstreamServer

logger = logging.getLogger("gatehouse.accounts")

MAX_KEY_LENGTH = 4096


@dataclass(frozen=True)
class AccountHeader:
    """The header that carries one person's credential to one server, and until when it is good."""

    name: str
    value: str
    until: datetime | None

    def __repr__(self) -> str:  # the value is a secret
        return f"AccountHeader(name={self.name!r})"


def _kind_of(server: UpstreamServer) -> user_credentials.UserCredentialKind:
    kind = server.user_credential_kind
    if kind is None:
        raise AccountError(f"The server {server.name} uses no personal credentials.")
    return kind


def connect_key(
    *, user: User, server: UpstreamServer, value: str, actor: str, client_ip: str | None = None
) -> ConnectedAccount:
    """Store a pasted key (a ``paste`` kind) as this person's credential for ``server``."""
    kind = _kind_of(server)
    if kind.connect != "paste":
        raise AccountError(f"The server {server.name} connects through its provider, not a pasted key.")
    value = value.strip()
    if not value or len(value) > MAX_KEY_LENGTH or any(ch in value for ch in "\r\n\0"):
        raise AccountError("Paste the key alone: one line, at most 4096 characters.")
    return _store(user=user, server=server, kind=kind, secret=value, refresh="", expires_at=None,
                  actor=actor, client_ip=client_ip)


def connect_tokens(
    *, user: User, server: UpstreamServer, tokens: provider.ProviderTokens, actor: str,
    client_ip: str | None = None,
) -> ConnectedAccount:
    """Store what the provider gave at the end of a person's authorization code flow."""
    kind = _kind_of(server)
    return _store(user=user, server=server, kind=kind, secret=tokens.access_token,
                  refresh=tokens.refresh_token, expires_at=_expiry(tokens), actor=actor, client_ip=client_ip)


def _expiry(tokens: provider.ProviderTokens) -> datetime | None:
    return timezone.now() + timedelta(seconds=tokens.expires_in) if tokens.expires_in is not None else None


def _store(
    *, user: User, server: UpstreamServer, kind: user_credentials.UserCredentialKind, secret: str,
    refresh: str, expires_at: datetime | None, actor: str, client_ip: str | None,
) -> ConnectedAccount:
    now = timezone.now()
    with transaction.atomic():
        account, _ = ConnectedAccount.objects.update_or_create(
            user=user, server=server,
            defaults={
                "kind": kind.name, "secret_encrypted": encryption.encrypt(secret),
                "refresh_encrypted": encryption.encrypt(refresh) if refresh else "",
                "expires_at": expires_at, "status": ConnectedAccount.Status.CONNECTED, "broken_reason": "",
                "connected_at": now, "refreshed_at": None,
            },
        )
        record(event=events.ACCOUNT_CONNECTED, actor=actor, owner=user.get_username(), server=server.name,
               client_ip=client_ip, detail={"kind": kind.name, "header": server.user_credential_header})
    return account


def disconnect(
    *, user: User, server: UpstreamServer, actor: str, client_ip: str | None = None,
    reason: str = "disconnected by its owner",
) -> bool:
    """Forget this person's credential for ``server``; the gateway stops sending it at once."""
    with transaction.atomic():
        deleted, _ = ConnectedAccount.objects.filter(user=user, server=server).delete()
        if deleted:
            record(event=events.ACCOUNT_DISCONNECTED, actor=actor, owner=user.get_username(),
                   server=server.name, client_ip=client_ip, detail={"reason": reason[:200]})
    return bool(deleted)


def reconfigure(
    *, server: UpstreamServer, settings: user_credentials.UserCredentialSettings, actor: str,
    client_ip: str | None = None,
) -> bool:
    """Give ``server`` the checked ``settings`` (the caller saves it, in its transaction); True if
    they changed. An empty client secret keeps the stored one. Connections of a kind the server no
    longer takes end, each audited: a pasted key is no OAuth token, nor the other way round."""
    fields = settings.fields()
    same_kind = settings.kind is not None and server.user_credential == settings.kind.name
    if same_kind and not fields["user_oauth_secret_encrypted"]:
        fields["user_oauth_secret_encrypted"] = server.user_oauth_secret_encrypted
    if all(getattr(server, name) == value for name, value in fields.items()):
        return False
    if server.user_credential != fields["user_credential"]:
        for account in ConnectedAccount.objects.filter(server=server).select_related("user"):
            disconnect(user=account.user, server=server, actor=actor, client_ip=client_ip,
                       reason="the server takes another kind of credential now")
    for name, value in fields.items():
        setattr(server, name, value)
    return True


def credential_header(*, user_id: int, server_id: int) -> AccountHeader | None:
    """The header the gateway sends for this person to this server, or None (not connected,
    broken, expired). A token due for a refresh is refreshed first (one at a time, above).
    Raises ``ProviderUnreachable`` when a due refresh cannot reach the provider and the token
    it has already expired."""
    account = (ConnectedAccount.objects.select_related("server")
               .filter(user_id=user_id, server_id=server_id).first())
    if account is None or account.server.user_credential_kind is None:
        return None
    now = timezone.now()
    if account.needs_refresh(now):
        account = _refresh(account)
    if account is None or not account.is_usable(timezone.now()):
        return None
    kind = user_credentials.get(account.kind)
    header = account.server.user_credential_header
    until = account.refresh_due_at
    value = kind.header_value(header, encryption.decrypt(account.secret_encrypted))
    return AccountHeader(name=header, value=value, until=until)


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _refresh(stale: ConnectedAccount) -> ConnectedAccount | None:
    with _lock_for(stale.change_key), transaction.atomic():
        account = (ConnectedAccount.objects.select_for_update(of=("self",)).select_related("server", "user")
                   .filter(pk=stale.pk).first())
        if account is None or not account.needs_refresh(timezone.now()):
            return account  # disconnected meanwhile, or another thread or instance refreshed it
        server = account.server
        details = {"kind": account.kind}
        try:
            tokens = provider.refresh(
                user_credentials.provider_of(public=server.user_oauth,
                                             secret_encrypted=server.user_oauth_secret_encrypted),
                refresh_token=encryption.decrypt(account.refresh_encrypted),
            )
        except ProviderRefused as exc:
            account.status, account.broken_reason = ConnectedAccount.Status.BROKEN, exc.detail[:200]
            account.save(update_fields=["status", "broken_reason"])
            record(event=events.ACCOUNT_REFRESH_FAILED, actor="gatehouse", owner=account.user.get_username(),
                   server=server.name, outcome=AuditEvent.Outcome.ERROR,
                   detail={**details, "reason": exc.detail[:200]})
            return account
        except ProviderUnreachable:
            logger.warning("account refresh failed: provider unreachable", extra={"server": server.name})
            if account.is_usable(timezone.now()):
                return account  # still good for a little while: try again on a later request
            raise
        account.secret_encrypted = encryption.encrypt(tokens.access_token)
        if tokens.refresh_token:  # a provider that rotates refresh tokens sends the next one
            account.refresh_encrypted = encryption.encrypt(tokens.refresh_token)
        account.expires_at, account.refreshed_at = _expiry(tokens), timezone.now()
        account.save(update_fields=["secret_encrypted", "refresh_encrypted", "expires_at", "refreshed_at"])
        record(event=events.ACCOUNT_REFRESHED, actor="gatehouse", owner=account.user.get_username(),
               server=server.name, detail=details)
        return account
