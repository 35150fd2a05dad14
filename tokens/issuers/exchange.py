"""RFC 8693 token exchange: a trusted issuer's JWT in, a Gatehouse token out.

No client secret: the subject token is the credential. What comes out is a normal Gatehouse
token (revocable, audited, owner ``ISSUER:sub``) whose scope is the issuer's narrowed by the
request's ``resource`` (one gateway server URL) and ``scope`` (tool names, applying to every
server left), and whose life is at most the issuer's ``max_ttl``, never past the subject token's
own ``exp`` and never past ``GATEHOUSE_TOKEN_MAX_TTL_SECONDS``. Errors carry the RFC 6749 §5.2
codes; every refusal is audited (``auth.denied``, ``via: token-exchange``) with its reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import events
from audit.services import record
from tokens.exceptions import ExternalTokenRefused, InvalidTokenRequest
from tokens.issuers.models import TrustedIssuer
from tokens.issuers.subject_owners import subject_user
from tokens.issuers.verification import ExternalIdentity, verify_external
from tokens.scope import TokenScope
from tokens.services import IssuedToken, issue_token

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPE_JWT = "urn:ietf:params:oauth:token-type:jwt"
TOKEN_TYPE_ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
ISSUED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPES = (TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN)
# The gateway routes a server URL may name (``resource``): /mcp/NAME/ and /sse/NAME/.
_RESOURCE_ROUTES = ("mcp", "sse")


class ExchangeRefused(Exception):
    """A refused exchange: ``error`` is the RFC 6749 §5.2 code, ``description`` says why."""

    def __init__(self, error: str, description: str, *, reason: str = "", issuer: str = "") -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.reason = reason or error
        self.issuer = issuer


@dataclass(frozen=True)
class Exchanged:
    issued: IssuedToken
    expires_in: int


def exchange_token(
    *, grant_type: str, subject_token: str, subject_token_type: str, resource: str = "", scope: str = "",
    client_ip: str | None = None,
) -> Exchanged:
    """Trade ``subject_token`` for a Gatehouse token, or raise ``ExchangeRefused`` (audited)."""
    try:
        return _exchange(grant_type=grant_type, subject_token=subject_token,
                         subject_token_type=subject_token_type, resource=resource, scope=scope,
                         client_ip=client_ip)
    except ExchangeRefused as refused:
        record(
            event=events.AUTH_DENIED,
            actor=f"issuer:{refused.issuer}" if refused.issuer else "token-exchange",
            client_ip=client_ip, outcome="denied", status=400,
            detail={"via": "token-exchange", "error": refused.error, "reason": refused.reason,
                    "issuer": refused.issuer, "detail": refused.description[:300]},
        )
        raise


def _exchange(
    *, grant_type: str, subject_token: str, subject_token_type: str, resource: str, scope: str,
    client_ip: str | None,
) -> Exchanged:
    if grant_type != GRANT_TYPE:
        raise ExchangeRefused("unsupported_grant_type", f"grant_type must be {GRANT_TYPE}.")
    if not subject_token:
        raise ExchangeRefused("invalid_request", "subject_token is required.")
    if subject_token_type not in SUBJECT_TOKEN_TYPES:
        raise ExchangeRefused(
            "invalid_request", f"subject_token_type must be one of {', '.join(SUBJECT_TOKEN_TYPES)}."
        )
    try:
        identity = verify_external(subject_token.strip())
    except ExternalTokenRefused as exc:
        raise ExchangeRefused("invalid_grant", exc.detail, reason=exc.reason, issuer=exc.issuer) from exc
    issuer = identity.issuer
    narrowed = _narrowed_scope(issuer, resource=resource, scope=scope)
    ttl = _lifetime(identity)
    with transaction.atomic():
        try:
            owner = subject_user(issuer, identity.subject)
            issued = issue_token(
                name=f"{issuer.name} exchange"[:100], owner=owner, scope=narrowed, ttl=ttl,
                actor=f"issuer:{issuer.name}", client_ip=client_ip,
                provenance={"via": "token-exchange", "issuer": issuer.name, "subject": identity.subject,
                            "subject_token_jti": identity.jti},
            )
        except ExternalTokenRefused as exc:
            raise ExchangeRefused("invalid_grant", exc.detail, reason=exc.reason, issuer=issuer.name) from exc
        except InvalidTokenRequest as exc:  # a server of the scope disabled or gone since
            raise ExchangeRefused("invalid_target", exc.detail, issuer=issuer.name) from exc
    return Exchanged(issued=issued, expires_in=int(ttl.total_seconds()))


def _lifetime(identity: ExternalIdentity) -> timedelta:
    remaining = math.floor((identity.expires_at - timezone.now()).total_seconds())
    if remaining < 1:
        raise ExchangeRefused("invalid_grant", "The subject token has expired.", reason="expired",
                              issuer=identity.issuer.name)
    return min(identity.issuer.max_ttl, timedelta(seconds=remaining), settings.TOKEN_MAX_TTL)


def resource_server(resource: str) -> str | None:
    """The server a gateway URL names (``{PUBLIC_URL}/mcp/NAME/``), or None if it names none."""
    parts, base = urlsplit(resource), urlsplit(settings.PUBLIC_URL)
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or parts.query or parts.fragment:
        return None
    prefix = base.path.rstrip("/")
    if not parts.path.startswith(prefix + "/"):
        return None
    segments = parts.path[len(prefix) + 1:].rstrip("/").split("/")
    if len(segments) == 2 and segments[0] in _RESOURCE_ROUTES and segments[1]:
        return segments[1]
    return None


def _narrowed_scope(issuer: TrustedIssuer, *, resource: str, scope: str) -> TokenScope:
    granted = issuer.token_scope
    servers = dict(granted.servers)
    if resource:
        name = resource_server(resource)
        if name is None:
            raise ExchangeRefused("invalid_target", f"resource must be a server URL of this gateway, "
                                  f"e.g. {settings.PUBLIC_URL.rstrip('/')}/mcp/NAME/.", issuer=issuer.name)
        if name not in servers:
            raise ExchangeRefused(
                "invalid_target", f"The issuer {issuer.name!r} does not grant the server {name!r}.",
                issuer=issuer.name,
            )
        servers = {name: servers[name]}
    wanted = [tool for tool in scope.split() if tool]
    if not wanted:
        return TokenScope(servers=servers)
    narrowed: dict[str, list[str] | None] = {}
    for server, allowed in servers.items():
        tools = [tool for tool in wanted if allowed is None or tool in allowed]
        if tools:
            narrowed[server] = sorted(set(tools))
    granted_tools = {tool for tools in narrowed.values() for tool in tools or ()}
    beyond = sorted(set(wanted) - granted_tools)
    if beyond:
        raise ExchangeRefused(
            "invalid_scope", f"Not granted by the issuer {issuer.name!r}: {', '.join(beyond)}.",
            issuer=issuer.name,
        )
    return TokenScope.from_mapping(narrowed)
