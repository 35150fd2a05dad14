"""Writes of the OAuth authorization server: grants, clients, consent, codes, token issue,
refresh rotation, revocation.

Every access token is minted by ``tokens.services.issue_token`` (so it is an ordinary ``gth_``
token, listed, audited and revoked like any other) and tied to its ``Connection``; ending a
connection revokes its tokens, and a reused code or refresh token ends its connection.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from audit import events
from audit.services import record
from gatehouse.oidc_discovery import ProviderUnavailable, fetch_json, is_provider_url
from tokens import services as token_services
from tokens.exceptions import AuthenticationFailed, InvalidTokenRequest
from tokens.models import Token
from tokens.oauth import selectors, validator
from tokens.oauth.exceptions import GrantError, OAuthError
from tokens.oauth.models import (
    REFRESH_TOKEN_LIFETIME,
    AccessGrant,
    AuthorizationCode,
    Connection,
    OAuthClient,
    RefreshToken,
)
from tokens.oauth.validator import Resource, ScopeMap
from tokens.scope import TokenScope
from upstreams.models import UpstreamServer

CODE_LIFETIME = timedelta(seconds=60)
# A metadata document is read again after this long (and at every authorization request).
DOCUMENT_MAX_AGE = timedelta(minutes=10)
_AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- grants ----------------------------------------------------------------------------------


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
                end_connection(connection=connection, actor=actor, reason="grant narrowed or removed")
        for token in Token.objects.usable().filter(owner=user, oauth_connection__isnull=False):
            if not ceiling.covers(token.scope):
                token_services.revoke_token(token=token, actor=actor, reason="grant narrowed or removed")


# --- clients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredClient:
    client: OAuthClient
    # Shown once, in the registration response; only its digest is kept.
    secret: str | None


def _clean_name(value: Any, fallback: str) -> str:
    if not isinstance(value, str) or not value.strip():
        return fallback
    return _CONTROL.sub("", value).strip()[:200]


def _checked_metadata(metadata: dict[str, Any], *, default_auth: str) -> dict[str, Any]:
    """RFC 7591 §2 metadata as we accept it; ``invalid_redirect_uri`` or
    ``invalid_client_metadata`` otherwise."""
    uris = metadata.get("redirect_uris")
    if not isinstance(uris, list) or not uris or len(uris) > 20:
        raise OAuthError("invalid_redirect_uri", "redirect_uris must be a list of 1 to 20 URIs.")
    for uri in uris:
        problem = validator.redirect_uri_problem(uri)
        if problem:
            raise OAuthError("invalid_redirect_uri", f"Redirect URI refused: {problem}.")
    method = metadata.get("token_endpoint_auth_method", default_auth)
    if method not in _AUTH_METHODS:
        raise OAuthError("invalid_client_metadata",
                         f"token_endpoint_auth_method must be one of {', '.join(_AUTH_METHODS)}.")
    grant_types = metadata.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or not set(grant_types) <= {"authorization_code", "refresh_token"}:
        raise OAuthError("invalid_client_metadata",
                         "grant_types may be authorization_code and refresh_token.")
    response_types = metadata.get("response_types", ["code"])
    if not isinstance(response_types, list) or not set(response_types) <= {"code"}:
        raise OAuthError("invalid_client_metadata", "response_types may only be code.")
    return {
        "redirect_uris": list(uris),
        "token_endpoint_auth_method": method,
        "grant_types": grant_types or ["authorization_code"],
        "response_types": ["code"],
        "client_name": _clean_name(metadata.get("client_name"), "Unnamed client"),
    }


def register_client(*, metadata: Any, client_ip: str | None, actor: str = "",
                    kind: str = OAuthClient.Kind.DYNAMIC) -> RegisteredClient:
    """Dynamic Client Registration (RFC 7591) and admin registration in the console."""
    if not isinstance(metadata, dict):
        raise OAuthError("invalid_client_metadata", "Send the client metadata as a JSON object.")
    # RFC 7591 §2: a client that says nothing authenticates with a secret.
    checked = _checked_metadata(metadata, default_auth="client_secret_basic")
    secret = None if checked["token_endpoint_auth_method"] == "none" else secrets.token_urlsafe(32)
    client = OAuthClient.objects.create(
        client_id=f"gthc_{secrets.token_urlsafe(18)}",
        kind=kind,
        name=checked["client_name"],
        redirect_uris=checked["redirect_uris"],
        token_endpoint_auth_method=checked["token_endpoint_auth_method"],
        secret_digest=validator.digest(secret) if secret else "",
        metadata={"grant_types": checked["grant_types"], "response_types": checked["response_types"]},
        registered_from=client_ip,
        created_by=actor[:150],
    )
    record(event=events.OAUTH_CLIENT_REGISTERED, actor=actor or "anonymous", client_ip=client_ip,
           detail={"client_id": client.client_id, "client_name": client.name, "kind": kind,
                   "redirect_uris": client.redirect_uris,
                   "token_endpoint_auth_method": client.token_endpoint_auth_method})
    return RegisteredClient(client=client, secret=secret)


def is_document_client_id(client_id: str) -> bool:
    """A Client ID Metadata Document URL: https (http only to loopback), with a path."""
    return is_provider_url(client_id) and urlsplit(client_id).path not in ("", "/")


def resolve_client(client_id: str) -> OAuthClient:
    """The client ``client_id`` names; a metadata document URL is fetched (and cached)."""
    if not client_id or len(client_id) > 2048:
        raise OAuthError("invalid_client", "Unknown client_id.", status=401, redirectable=False)
    client = OAuthClient.objects.filter(client_id=client_id).first()
    if client is not None and client.kind != OAuthClient.Kind.DOCUMENT:
        if client.disabled:
            raise OAuthError("invalid_client", "This client is disabled.", status=401, redirectable=False)
        return client
    if not is_document_client_id(client_id):
        raise OAuthError("invalid_client", "Unknown client_id.", status=401, redirectable=False)
    if client is not None and client.disabled:
        raise OAuthError("invalid_client", "This client is disabled.", status=401, redirectable=False)
    if client is not None and client.fetched_at and timezone.now() - client.fetched_at < DOCUMENT_MAX_AGE:
        return client
    return _fetch_client_document(client_id)


def _fetch_client_document(client_id: str) -> OAuthClient:
    try:
        document = fetch_json(client_id)
    except ProviderUnavailable as exc:
        raise OAuthError("invalid_client", f"The client's metadata document could not be read: {exc}",
                         status=401, redirectable=False) from exc
    if document.get("client_id") != client_id:
        raise OAuthError("invalid_client", "The client's metadata document names another client_id.",
                         status=401, redirectable=False)
    try:
        checked = _checked_metadata(document, default_auth="none")
    except OAuthError as exc:
        raise OAuthError("invalid_client", f"The client's metadata document is not usable: {exc.description}",
                         status=401, redirectable=False) from exc
    if checked["token_endpoint_auth_method"] != "none":
        raise OAuthError("invalid_client", "A metadata document client must be public "
                         "(token_endpoint_auth_method none).", status=401, redirectable=False)
    client, created = OAuthClient.objects.update_or_create(
        client_id=client_id,
        defaults={
            "kind": OAuthClient.Kind.DOCUMENT,
            "name": checked["client_name"],
            "redirect_uris": checked["redirect_uris"],
            "token_endpoint_auth_method": "none",
            "metadata": {"grant_types": checked["grant_types"],
                         "client_uri": str(document.get("client_uri", ""))[:500]},
            "fetched_at": timezone.now(),
        },
    )
    if created:
        record(event=events.OAUTH_CLIENT_REGISTERED, actor="anonymous",
               detail={"client_id": client_id, "client_name": client.name, "kind": client.kind,
                       "redirect_uris": client.redirect_uris, "token_endpoint_auth_method": "none"})
    return client


def authenticate_client(*, client_id: str, client_secret: str | None) -> OAuthClient:
    """The token and revocation endpoints' client check: public clients name themselves,
    confidential ones prove it with their secret (compared in constant time)."""
    client = resolve_client(client_id)
    if client.is_public:
        return client
    presented = validator.digest(client_secret) if client_secret else ""
    if not presented or not hmac.compare_digest(presented, client.secret_digest):
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    return client


# --- authorization ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked ``/oauth/authorize`` request: safe to show and to redirect to."""

    client: OAuthClient
    redirect_uri: str
    state: str
    code_challenge: str
    resource: Resource
    requested: ScopeMap | None
    scope: str

    def as_params(self) -> dict[str, str]:
        """The request again, for the consent form to post back (checked again on POST)."""
        return {
            "response_type": "code", "client_id": self.client.client_id, "redirect_uri": self.redirect_uri,
            "state": self.state, "code_challenge": self.code_challenge, "code_challenge_method": "S256",
            "resource": self.resource.url, "scope": self.scope,
        }


def check_authorization_request(params: dict[str, str]) -> AuthorizationRequest:
    """Client and redirect URI first (their errors are shown, never redirected), then the rest
    (redirected to the client with ``state`` and ``iss``)."""
    client = resolve_client(params.get("client_id", ""))
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri and len(client.redirect_uris) == 1:
        redirect_uri = client.redirect_uris[0]
    if not validator.redirect_uri_matches(client.redirect_uris, redirect_uri):
        raise OAuthError("invalid_request", "The redirect URI is not registered for this client.",
                         redirectable=False)
    state = params.get("state", "")[:2000]
    try:
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "Only response_type=code is supported.")
        validator.check_code_challenge(
            params.get("code_challenge", ""), params.get("code_challenge_method", ""))
        resource = validator.parse_resource(params.get("resource", ""))
    except OAuthError as exc:
        exc.redirect_to = redirect_to_client(
            redirect_uri, error=exc.error, error_description=exc.description, state=state)
        raise
    scope = params.get("scope", "")
    return AuthorizationRequest(
        client=client, redirect_uri=redirect_uri, state=state,
        code_challenge=params["code_challenge"], resource=resource,
        requested=validator.parse_scope(scope), scope=scope[:2000],
    )


def redirect_to_client(redirect_uri: str, **params: str) -> str:
    """``redirect_uri`` with ``params`` added to its query, and ``iss`` (RFC 9207) always."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v]
    query.append(("iss", settings.PUBLIC_URL))
    return urlunsplit(parts._replace(query=urlencode(query)))


def offered_scope(*, request: AuthorizationRequest, user: User) -> dict[str, list[str] | None]:
    """What consent can give: the person's grants, within the resource and what was asked."""
    ceiling = selectors.ceiling_for(user)
    return validator.intersect(ceiling.tools, resource=request.resource, requested=request.requested)


def approve(
    *, request: AuthorizationRequest, user: User, unticked: dict[str, set[str]],
    tool_names: dict[str, list[str]], client_ip: str | None, user_agent: str = "",
) -> str:
    """The person allowed it: a connection and a code for what they kept ticked; the client's
    redirect URI to send them to.

    ``tool_names`` are the tools the consent page listed for each server whose grant allows all
    tools; unticking one of those narrows the server to the rest.
    """
    scope = offered_scope(request=request, user=user)
    for server, removed in unticked.items():
        if server not in scope or not removed:
            continue
        current = scope[server] if scope[server] is not None else tool_names.get(server, [])
        kept = sorted(set(current or []) - removed)
        if kept:
            scope[server] = kept
        else:
            del scope[server]
    if not scope:
        raise OAuthError("access_denied", "Nothing was left to allow.")
    code = validator.new_secret()
    with transaction.atomic():
        connection = Connection.objects.create(
            user=user, client=request.client, resource=request.resource.url, scope=scope
        )
        AuthorizationCode.objects.create(
            digest=validator.digest(code), connection=connection, redirect_uri=request.redirect_uri,
            code_challenge=request.code_challenge, expires_at=timezone.now() + CODE_LIFETIME,
        )
        record(event=events.OAUTH_CONSENT, actor=user.get_username(), owner=user.get_username(),
               client_ip=client_ip, user_agent=user_agent, server=request.resource.server or "",
               detail={"client_id": request.client.client_id, "client_name": request.client.name,
                       "resource": request.resource.url, "scope": scope, "connection_id": connection.pk})
    return redirect_to_client(request.redirect_uri, code=code, state=request.state)


def deny(*, request: AuthorizationRequest, user: User, reason: str, client_ip: str | None,
         user_agent: str = "") -> str:
    """The person said no, or has no grant for the resource: ``access_denied`` to the client."""
    record(event=events.OAUTH_DENIED, actor=user.get_username(), owner=user.get_username(),
           client_ip=client_ip, user_agent=user_agent, outcome="denied",
           server=request.resource.server or "",
           detail={"client_id": request.client.client_id, "client_name": request.client.name,
                   "resource": request.resource.url, "reason": reason})
    return redirect_to_client(request.redirect_uri, error="access_denied",
                              error_description=reason, state=request.state)


# --- the token endpoint ----------------------------------------------------------------------


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    refresh_token: str
    expires_in: int
    scope: str

    def as_json(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "token_type": "Bearer", "expires_in": self.expires_in,
                "refresh_token": self.refresh_token, "scope": self.scope}


def _issue(*, connection: Connection, client_ip: str | None, via: str) -> TokenResponse:
    """An access token (within today's grants) and a fresh refresh token for ``connection``."""
    ceiling = selectors.ceiling_for(connection.user)
    scope = validator.intersect(
        ceiling.tools, resource=validator.parse_resource(connection.resource),
        requested={s: (None if t is None else frozenset(t)) for s, t in connection.scope.items()},
    )
    if not scope:
        end_connection(connection=connection, actor="oauth", reason="no grant left")
        raise OAuthError("invalid_grant", "The person no longer has access to this resource.")
    ttl = ceiling.token_ttl(list(scope))
    client = connection.client
    try:
        issued = token_services.issue_token(
            name=f"{client.name} (OAuth)"[:100], owner=connection.user, scope=TokenScope.from_mapping(scope),
            ttl=ttl, actor=connection.user.get_username(), client_ip=client_ip,
            provenance={"via": "oauth", "client_id": client.client_id, "client_name": client.name,
                        "grant_type": via, "connection_id": connection.pk},
            oauth_connection_id=connection.pk,
        )
    except InvalidTokenRequest as exc:
        raise OAuthError("invalid_grant", str(exc)) from exc
    refresh = validator.new_secret()
    RefreshToken.objects.create(
        digest=validator.digest(refresh), connection=connection,
        expires_at=timezone.now() + REFRESH_TOKEN_LIFETIME,
    )
    return TokenResponse(access_token=issued.secret, refresh_token=refresh,
                         expires_in=int(ttl.total_seconds()), scope=validator.scope_string(scope))


def exchange_code(
    *, client: OAuthClient, code: str, redirect_uri: str, code_verifier: str, resource: str,
    client_ip: str | None,
) -> TokenResponse:
    """``grant_type=authorization_code``. A code is good once: the first presentation spends it
    whatever follows (a wrong verifier too); a second one ends what the first gave."""
    row = (AuthorizationCode.objects.select_related("connection__client", "connection__user")
           .filter(digest=validator.digest(code or "")).first())
    if row is None or row.connection.client_id != client.pk:
        raise OAuthError("invalid_grant", "The code is not valid.")
    connection = row.connection
    now = timezone.now()
    # The claim is one conditional UPDATE: of two concurrent presentations exactly one wins.
    claimed = AuthorizationCode.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now)
    if not claimed:
        record(event=events.OAUTH_CODE_REUSED, actor="oauth", owner=connection.user.get_username(),
               client_ip=client_ip, outcome="denied",
               detail={"client_id": client.client_id, "connection_id": connection.pk})
        end_connection(connection=connection, actor="oauth", reason="authorization code reused")
        raise OAuthError("invalid_grant", "The code was already used; what it gave is revoked.")
    if row.expires_at <= now:
        raise OAuthError("invalid_grant", "The code has expired.")
    if redirect_uri != row.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's.")
    if not validator.pkce_verifies(code_verifier, row.code_challenge):
        raise OAuthError("invalid_grant", "The PKCE code_verifier does not match the challenge.")
    if resource and validator.parse_resource(resource).url != connection.resource:
        raise OAuthError("invalid_target", "resource differs from the authorization request's.")
    connection.refresh_from_db(fields=["revoked_at"])
    if not connection.is_live:
        raise OAuthError("invalid_grant", "This authorization has been revoked.")
    return _issue(connection=connection, client_ip=client_ip, via="authorization_code")


def refresh(
    *, client: OAuthClient, refresh_token: str, resource: str, client_ip: str | None
) -> TokenResponse:
    """``grant_type=refresh_token``: rotate; a spent refresh token presented again ends its family."""
    row = (RefreshToken.objects.select_related("connection__client", "connection__user")
           .filter(digest=validator.digest(refresh_token or "")).first())
    if row is None or row.connection.client_id != client.pk:
        raise OAuthError("invalid_grant", "The refresh token is not valid.")
    connection = row.connection
    if not row.is_usable() and row.rotated_at is None:
        raise OAuthError("invalid_grant", "The refresh token has expired or was revoked.")
    if resource and validator.parse_resource(resource).url != connection.resource:
        raise OAuthError("invalid_target", "resource differs from the one consented to.")
    now = timezone.now()
    claimed = RefreshToken.objects.filter(pk=row.pk, rotated_at__isnull=True).update(rotated_at=now)
    if not claimed:
        if connection.is_live:
            record(event=events.OAUTH_REFRESH_REUSED, actor="oauth", owner=connection.user.get_username(),
                   client_ip=client_ip, outcome="denied",
                   detail={"client_id": client.client_id, "connection_id": connection.pk})
            end_connection(connection=connection, actor="oauth", reason="refresh token reused")
        raise OAuthError("invalid_grant", "The refresh token was already used; its family is revoked.")
    Connection.objects.filter(pk=connection.pk).update(last_refreshed_at=now)
    return _issue(connection=connection, client_ip=client_ip, via="refresh_token")


# --- revocation ------------------------------------------------------------------------------


def end_connection(*, connection: Connection, actor: str, reason: str, client_ip: str | None = None) -> None:
    """Disconnect: refresh tokens end, access tokens are revoked (open streams within 1 s)."""
    with transaction.atomic():
        ended = Connection.objects.filter(pk=connection.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoke_reason=reason[:200]
        )
        for token in Token.objects.usable().filter(oauth_connection=connection):
            token_services.revoke_token(token=token, actor=actor, reason=reason, client_ip=client_ip)
        if ended:
            record(event=events.OAUTH_DISCONNECTED, actor=actor, owner=connection.user.get_username(),
                   client_ip=client_ip,
                   detail={"client_id": connection.client.client_id, "client_name": connection.client.name,
                           "connection_id": connection.pk, "reason": reason})


def revoke(*, client: OAuthClient, token: str, client_ip: str | None) -> None:
    """RFC 7009: a refresh token ends its connection; an access token is revoked and ends its
    refresh tokens. Tokens of other clients and unknown strings are ignored (200 either way)."""
    row = (RefreshToken.objects.select_related("connection__client", "connection__user")
           .filter(digest=validator.digest(token or "")).first())
    if row is not None:
        if row.connection.client_id == client.pk:
            end_connection(connection=row.connection, actor=f"oauth client {client.name}"[:150],
                           reason="revoked by the client", client_ip=client_ip)
        return
    try:
        authenticated = token_services.authenticate_token(raw_token=token)
    except AuthenticationFailed:
        return
    access = Token.objects.select_related("oauth_connection").filter(pk=authenticated.token_id).first()
    if access is None or access.oauth_connection is None or access.oauth_connection.client_id != client.pk:
        return
    end_connection(connection=access.oauth_connection, actor=f"oauth client {client.name}"[:150],
                   reason="revoked by the client", client_ip=client_ip)
