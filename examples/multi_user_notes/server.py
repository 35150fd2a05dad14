"""A multi-user MCP server behind Gatehouse: each caller keeps their own notes.

Gatehouse (``add_server notes URL --forward-identity``) sends every request with a short-lived JWT
it signed, saying who calls: ``sub`` (the Gatehouse user), ``aud`` (this server's URL, as
registered), ``scope``, ``sid``. This server verifies it against Gatehouse's published keys
(``/.well-known/jwks.json``) with the official MCP SDK's token-verifier support, and keeps notes
per ``sub``: alice never sees bob's. A request that bypasses Gatehouse (no assertion, a forged or
expired one, one made for another server, a Gatehouse client token) gets 401.

    GATEHOUSE_URL=http://127.0.0.1:8000 NOTES_URL=http://127.0.0.1:3005/mcp \\
        python examples/multi_user_notes/server.py --port 3005
    python manage.py add_server notes http://127.0.0.1:3005/mcp --forward-identity

``GATEHOUSE_ISSUER`` defaults to ``GATEHOUSE_URL`` (Gatehouse's ``GATEHOUSE_TOKEN_ISSUER``);
``NOTES_URL`` must be the exact URL registered with ``add_server``: it is the audience.
"""

from __future__ import annotations

import argparse
import collections
import os

import anyio
import jwt
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

IDENTITY_TYP = "gatehouse-identity+jwt"


class GatehouseIdentity:
    """``TokenVerifier`` for Gatehouse identity assertions (the SDK answers 401 when it says None)."""

    def __init__(self, *, gatehouse_url: str, issuer: str, audience: str) -> None:
        # An unknown kid (a key rotated in since the last fetch) refetches the JWKS, at most once a
        # second; PyJWKClient's default waits up to 30 s, refusing new assertions that long.
        self.jwks = jwt.PyJWKClient(f"{gatehouse_url.rstrip('/')}/.well-known/jwks.json", cooldown_duration=1)
        self.issuer, self.audience = issuer, audience

    def _verify(self, token: str) -> dict:
        if jwt.get_unverified_header(token).get("typ") != IDENTITY_TYP:
            raise jwt.InvalidTokenError("not a Gatehouse identity assertion")
        key = self.jwks.get_signing_key_from_jwt(token)  # by kid; refetched after a key rotation
        return jwt.decode(
            token, key.key, algorithms=["EdDSA", "ES256"], audience=self.audience, issuer=self.issuer,
            options={"require": ["iss", "aud", "sub", "exp", "iat", "client_id"]},
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = await anyio.to_thread.run_sync(self._verify, token)  # the JWKS fetch blocks
        except jwt.PyJWTError:
            return None
        return AccessToken(
            token=token, client_id=claims["client_id"], scopes=claims.get("scope", "").split(),
            expires_at=claims["exp"], subject=claims["sub"], resource=self.audience, claims=claims,
        )


def build_server(*, gatehouse_url: str, issuer: str, url: str) -> MCPServer:
    mcp = MCPServer(
        "multi-user-notes",
        token_verifier=GatehouseIdentity(gatehouse_url=gatehouse_url, issuer=issuer, audience=url),
        auth=AuthSettings(issuer_url=issuer, resource_server_url=url, validate_token_resource=True),
    )
    notes: dict[str, list[str]] = collections.defaultdict(list)

    def caller() -> str:
        token = get_access_token()
        if token is None or not token.subject:  # never: the SDK refused the request before
            raise PermissionError("no verified caller")
        return token.subject

    @mcp.tool()
    def add_note(text: str) -> str:
        """Keep a note for the calling user."""
        notes[caller()].append(text)
        return f"{caller()} has {len(notes[caller()])} note(s)"

    @mcp.tool()
    def list_notes() -> list[str]:
        """The calling user's notes (nobody else's)."""
        return list(notes[caller()])

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser(description="A multi-user MCP server behind Gatehouse.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3005)
    args = parser.parse_args()
    gatehouse_url = os.environ["GATEHOUSE_URL"]
    url = os.environ.get("NOTES_URL", f"http://{args.host}:{args.port}/mcp")
    mcp = build_server(
        gatehouse_url=gatehouse_url, issuer=os.environ.get("GATEHOUSE_ISSUER", gatehouse_url), url=url
    )
    uvicorn.run(mcp.streamable_http_app(streamable_http_path="/mcp"), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
