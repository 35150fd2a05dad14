"""Writes of the OAuth flow: consent, codes, token issue, refresh rotation, revocation
(grants are in ``grants``, clients in ``clients``).

Every access token is minted by ``tokens.services.issue_token`` (so it is an ordinary ``gth_``
token, listed, audited and revoked like any other) and tied to its ``Connection``; ending a
connection revokes its tokens, and a reused code or refresh token ends its connection.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit import events
from audit.services import record
from core.secrets_mask import TOKEN_PREFIX
from tokens import services as token_services
from tokens.exceptions import AuthenticationFailed, InvalidTokenRequest, InvalidTransition
from tokens.models import Token
from tokens.oauth import clients, selectors, validator
from tokens.oauth.exceptions import OAuthError
from tokens.oauth.models import (
    REFRESH_TOKEN_LIFETIME,
    AuthorizationCode,
    Connection,
    OAuthClient,
    RefreshToken,
)
from tokens.oauth.validator import Resource, ScopeMap
from tokens.scope import TokenScope

CODE_LIFETIME = timedelta(seconds=60)


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
    # False when the client left redirect_uri out (its one registered URI is used): the token
    # request then need not repeat it (RFC 6749 §4.1.3).
    redirect_uri_given: bool = True

    def as_params(self) -> dict[str, str]:
        """The request again, for the consent form to post back (checked again on POST)."""
        return {
            "response_type": "code", "client_id": self.client.client_id,
            "redirect_uri": self.redirect_uri if self.redirect_uri_given else "",
            "state": self.state, "code_challenge": self.code_challenge, "code_challenge_method": "S256",
            "resource": self.resource.url, "scope": self.scope,
        }


def check_authorization_request(params: dict[str, str]) -> AuthorizationRequest:
    """Client and redirect URI first (their errors are shown, never redirected), then the rest
    (redirected to the client with ``state`` and ``iss``)."""
    client = clients.resolve_client(params.get("client_id", ""))
    redirect_uri = params.get("redirect_uri", "")
    redirect_uri_given = bool(redirect_uri)
    if not redirect_uri and len(client.redirect_uris) == 1:
        redirect_uri = client.redirect_uris[0]
    if not validator.redirect_uri_matches(client.redirect_uris, redirect_uri):
        raise OAuthError("invalid_request", "The redirect URI is not registered for this client.")
    state = params.get("state", "")
    if len(state) > 2000:
        # Returned as sent or not at all: a client that cannot get its state back must not
        # receive an answer it cannot match.
        raise OAuthError("invalid_request", "state is longer than 2000 characters.")
    try:
        if len(params.get("scope", "")) > 2000:
            # Refused, never cut: a cut scope could ask for more than the page showed.
            raise OAuthError("invalid_scope", "scope is longer than 2000 characters.")
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
        client=client, redirect_uri=redirect_uri, redirect_uri_given=redirect_uri_given, state=state,
        code_challenge=params["code_challenge"], resource=resource,
        requested=validator.parse_scope(scope), scope=scope,
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
            digest=validator.digest(code), connection=connection,
            redirect_uri=request.redirect_uri if request.redirect_uri_given else "",
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
    refresh_token: str | None
    expires_in: int
    scope: str

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"access_token": self.access_token, "token_type": "Bearer",
                                "expires_in": self.expires_in, "scope": self.scope}
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        return body


def _issue(*, connection: Connection, client_ip: str | None, via: str) -> TokenResponse:
    """An access token (within today's grants) and, for a client that registered the
    ``refresh_token`` grant, a fresh refresh token for ``connection``."""
    if not connection.user.is_active:
        end_connection(connection=connection, actor="oauth", reason="the person's account is inactive")
        raise OAuthError("invalid_grant", "The person's account is inactive.")
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
    refresh = None
    if "refresh_token" in client.metadata.get("grant_types", ["authorization_code"]):
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
    if row.redirect_uri and redirect_uri != row.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's.")
    if not row.redirect_uri and redirect_uri and redirect_uri not in connection.client.redirect_uris:
        raise OAuthError("invalid_grant", "redirect_uri is not registered for this client.")
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
        # Revoking one ends its siblings too (tokens.services.revoke_token): the rest may be done.
        for token in Token.objects.usable().filter(oauth_connection=connection):
            with contextlib.suppress(InvalidTransition):
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
    if not token.startswith(TOKEN_PREFIX):
        return  # only our own access tokens are revoked here, never a trusted issuer's JWT
    try:
        authenticated = token_services.authenticate_token(raw_token=token)
    except AuthenticationFailed:
        return
    access = Token.objects.select_related("oauth_connection").filter(pk=authenticated.token_id).first()
    if access is None or access.oauth_connection is None or access.oauth_connection.client_id != client.pk:
        return
    end_connection(connection=access.oauth_connection, actor=f"oauth client {client.name}"[:150],
                   reason="revoked by the client", client_ip=client_ip)
