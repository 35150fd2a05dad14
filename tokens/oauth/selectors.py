"""Reads: a person's ceiling, their connections and tokens, the grants list, server metadata."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import Q

from tokens.models import Token
from tokens.oauth.models import AccessGrant, Connection, OAuthClient
from tokens.oauth.validator import SCOPE_PREFIX, ScopeMap
from upstreams.models import UpstreamServer


@dataclass(frozen=True)
class Ceiling:
    """The most a person may get without an admin: per server, the tools (None: all) and the
    longest lifetime any grant for that server allows (None: the OAuth default)."""

    tools: ScopeMap
    max_ttl: dict[str, timedelta | None]

    def allows(self, server: str, tool: str | None = None) -> bool:
        if server not in self.tools:
            return False
        allowed = self.tools[server]
        return tool is None or allowed is None or tool in allowed

    def covers(self, scope: dict[str, Any]) -> bool:
        """Whether a token scope (``{"server": null | [tools]}``) stays within this ceiling."""
        for server, tools in scope.items():
            if server not in self.tools:
                return False
            allowed = self.tools[server]
            if allowed is None:
                continue
            if tools is None or not set(tools) <= allowed:
                return False
        return True

    def token_ttl(self, servers: list[str]) -> timedelta:
        """The access token lifetime: the OAuth default, shortened by any grant's maximum."""
        ttl: timedelta = settings.OAUTH_ACCESS_TTL
        for server in servers:
            limit = self.max_ttl.get(server)
            if limit is not None:
                ttl = min(ttl, limit)
        return ttl


def grants_for(user: AbstractBaseUser | AnonymousUser) -> list[AccessGrant]:
    if not user.is_authenticated:
        return []
    return list(
        AccessGrant.objects.filter(Q(user_id=user.pk) | Q(group__user=user.pk))
        .select_related("user", "group")
        .distinct()
    )


def ceiling_for(user: AbstractBaseUser | AnonymousUser) -> Ceiling:
    """The union of the person's own grants and their groups', over enabled servers only."""
    enabled = set(UpstreamServer.objects.filter(enabled=True).values_list("name", flat=True))
    tools: dict[str, set[str] | None] = {}
    max_ttl: dict[str, timedelta | None] = {}
    for grant in grants_for(user):
        if grant.server not in enabled:
            continue
        if grant.tools is None or tools.get(grant.server, set()) is None:
            tools[grant.server] = None
        else:
            current = tools.setdefault(grant.server, set())
            if current is not None:
                current.update(grant.tools)
        ttl = None if grant.max_ttl_seconds is None else timedelta(seconds=grant.max_ttl_seconds)
        if grant.server not in max_ttl:
            max_ttl[grant.server] = ttl
        else:
            known = max_ttl[grant.server]
            max_ttl[grant.server] = None if known is None or ttl is None else max(known, ttl)
    return Ceiling(
        tools={s: (None if t is None else frozenset(t)) for s, t in tools.items()},
        max_ttl=max_ttl,
    )


def grant_list() -> list[AccessGrant]:
    return list(AccessGrant.objects.select_related("user", "group").order_by("server", "id"))


def connections_of(user: AbstractBaseUser) -> list[Connection]:
    return list(Connection.objects.live().filter(user_id=user.pk).select_related("client"))


def oauth_tokens_of(user: AbstractBaseUser) -> list[Token]:
    """The person's tokens that still work: OAuth tokens and any an admin issued them."""
    return list(
        Token.objects.usable().filter(owner_id=user.pk).select_related("oauth_connection__client")
    )


def client_list() -> list[OAuthClient]:
    return list(OAuthClient.objects.order_by("-created_at")[:500])


def scopes_supported(server: str | None) -> list[str]:
    """The scopes a resource's metadata lists: its own server's only. The gateway-wide document
    names no server, so unauthenticated callers cannot list the servers behind the gateway."""
    return [f"{SCOPE_PREFIX}{server}"] if server else []


def step_up_scope(*, owner_id: int, server: str, tool: str) -> str | None:
    """The scope an OAuth client should ask for to call ``tool``, when its owner's grants allow
    it (``mcp:SERVER:TOOL``); None when no grant does, and the refusal stays plain."""
    owner = User.objects.filter(pk=owner_id, is_active=True).first()
    if owner is None or not ceiling_for(owner).allows(server, tool):
        return None
    return f"{SCOPE_PREFIX}{server}:{tool}"
