"""Grants: who may get which tokens by themselves. A grant is the ceiling of every token a
person gets without an admin; narrowing or removing one ends what no longer fits at once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction

from audit import events
from audit.services import record
from tokens import services as token_services
from tokens.exceptions import InvalidTokenRequest, InvalidTransition
from tokens.models import Token
from tokens.oauth import selectors, services
from tokens.oauth.exceptions import GrantError
from tokens.oauth.models import AccessGrant, Connection
from tokens.scope import TokenScope
from upstreams.models import UpstreamServer


def grant_access(
    *,
    user: User | None = None,
    group: Group | None = None,
    servers: list[str],
    tools: list[str] = (),  # type: ignore[assignment]
    max_ttl: timedelta | None = None,
    actor: str,
) -> list[AccessGrant]:
    """Let a person or group get tokens for ``servers`` (and ``tools``: all when empty; ``s:t``
    pins a tool to one server) without an admin. Replaces what they had for those servers; a
    narrower grant revokes what exceeds it."""
    if (user is None) == (group is None):
        raise GrantError("Name exactly one of a user or a group.")
    try:
        scope = TokenScope.from_selection(servers=servers, tools=list(tools))
    except InvalidTokenRequest as exc:
        raise GrantError(str(exc)) from exc
    known = set(UpstreamServer.objects.filter(name__in=scope.servers).values_list("name", flat=True))
    unknown = sorted(set(scope.servers) - known)
    if unknown:
        raise GrantError(f"Unknown server(s): {', '.join(unknown)}.")
    if max_ttl is not None and (max_ttl <= timedelta(0) or max_ttl > settings.TOKEN_MAX_TTL):
        raise GrantError("max-ttl must be positive and within GATEHOUSE_TOKEN_MAX_TTL_SECONDS.")
    grants = []
    with transaction.atomic():
        for server, allowed in scope.to_mapping().items():
            grant, _ = AccessGrant.objects.update_or_create(
                user=user, group=group, server=server,
                defaults={
                    "tools": allowed,
                    "max_ttl_seconds": int(max_ttl.total_seconds()) if max_ttl else None,
                    "created_by": actor[:150],
                },
            )
            grants.append(grant)
            record(event=events.ACCESS_GRANTED, actor=actor, server=server,
                   owner=user.get_username() if user else "",
                   detail={"subject": grant.subject, "tools": allowed,
                           "max_ttl_seconds": grant.max_ttl_seconds})
        enforce_ceilings(users=_members(user=user, group=group), actor=actor)
    return grants


def revoke_access(
    *, user: User | None = None, group: Group | None = None, servers: list[str] = (),  # type: ignore[assignment]
    actor: str,
) -> int:
    """Remove grants (for ``servers``, or all); tokens and connections beyond what is left end."""
    if (user is None) == (group is None):
        raise GrantError("Name exactly one of a user or a group.")
    rows = AccessGrant.objects.filter(user=user, group=group)
    if servers:
        rows = rows.filter(server__in=servers)
    with transaction.atomic():
        removed = list(rows.select_related("user", "group"))
        for grant in removed:
            record(event=events.ACCESS_REVOKED, actor=actor, server=grant.server,
                   owner=user.get_username() if user else "", detail={"subject": grant.subject})
            grant.delete()
        enforce_ceilings(users=_members(user=user, group=group), actor=actor)
    return len(removed)


def _members(*, user: User | None, group: Group | None) -> list[User]:
    if user is not None:
        return [user]
    assert group is not None
    return list(group.user_set.all())


def enforce_ceilings(*, users: Iterable[User], actor: str) -> None:
    """End every connection and self-service token that now exceeds its owner's grants."""
    for user in users:
        ceiling = selectors.ceiling_for(user)
        for connection in Connection.objects.live().filter(user=user).select_related("client"):
            if not ceiling.covers(connection.scope):
                services.end_connection(
                    connection=connection, actor=actor, reason="grant narrowed or removed"
                )
        for token in Token.objects.usable().filter(owner=user, oauth_connection__isnull=False):
            if not ceiling.covers(token.scope):
                # A sibling revoked a moment ago (revoke_token ends them together) is done already.
                with contextlib.suppress(InvalidTransition):
                    token_services.revoke_token(token=token, actor=actor, reason="grant narrowed or removed")




def on_membership_changed(*, instance: object, action: str, reverse: bool, pk_set: set[int] | None,
                          **_: object) -> None:
    """``m2m_changed`` of ``User.groups``: re-check the ceiling of whoever left a group."""
    if action not in ("post_remove", "post_clear"):
        return
    if isinstance(instance, User):
        users = [instance]
    elif action == "post_remove" and pk_set:
        users = list(User.objects.filter(pk__in=pk_set))
    else:
        # A group emptied at once: who was in it is gone, so everyone connected is re-checked.
        users = list(User.objects.filter(oauth_connections__revoked_at__isnull=True).distinct())
    enforce_ceilings(users=users, actor="group membership change")
