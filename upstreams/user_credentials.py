"""The user credential registry: how a server takes each caller's own credential (connected accounts).

A server with a user credential sends every request with the caller's own secret in one header:
a key the person pasted (``header:NAME``) or an OAuth access token Gatehouse got for them from the
upstream's provider and keeps refreshed (``oauth``). Each kind is one ``register`` entry here; the
command line (``add_server --user-credential``), the console, the API, the gateway's injection and
the connect pages read the registry, never a kind's name. Stored per person and server in
``upstreams.accounts``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from django.core.exceptions import ValidationError

from core import encryption
from upstreams.exceptions import InvalidServerConfig
from upstreams.headers import RESERVED_HEADERS, validate_header
from upstreams.url import validate_upstream_url

BEARER_HEADER = "authorization"


@dataclass(frozen=True)
class UserCredentialKind:
    """One kind: how it is written on the command line, connected, and sent upstream."""

    name: str
    label: str
    # "paste": the person types the value on My access; "provider": an OAuth authorization code flow.
    connect: Literal["paste", "provider"]
    # The header when the spec names none (``oauth``); None: the spec must name it (``header:NAME``).
    default_header: str | None
    # The header value for a stored secret (``Bearer`` for an access token in Authorization).
    header_value: Callable[[str, str], str]


def _as_is(header: str, secret: str) -> str:
    return secret


def _bearer_in_authorization(header: str, secret: str) -> str:
    return f"Bearer {secret}" if header.lower() == BEARER_HEADER else secret


_KINDS: dict[str, UserCredentialKind] = {}


def register(kind: UserCredentialKind) -> UserCredentialKind:
    _KINDS[kind.name] = kind
    return kind


HEADER = register(UserCredentialKind(
    name="header", label="personal key in a header", connect="paste", default_header=None,
    header_value=_as_is,
))
OAUTH = register(UserCredentialKind(
    name="oauth", label="OAuth account at the upstream's provider", connect="provider",
    default_header="Authorization", header_value=_bearer_in_authorization,
))


def get(name: str) -> UserCredentialKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise InvalidServerConfig(
            f"Unknown user credential kind {name!r}; use {' or '.join(spec_forms())}."
        ) from None


def spec_forms() -> list[str]:
    """How each kind is written on the command line (``header:NAME``, ``oauth``)."""
    return [f"{k.name}:HEADER-NAME" if k.default_header is None else k.name for k in _KINDS.values()]


def parse_spec(spec: str, *, header: str = "") -> tuple[UserCredentialKind, str]:
    """``header:X-Api-Key`` or ``oauth`` (with ``header`` overriding its default) → kind and header."""
    name, _, named = spec.strip().partition(":")
    kind = get(name)
    chosen = named or header or kind.default_header or ""
    if not chosen:
        raise InvalidServerConfig(f"Name the header: --user-credential {kind.name}:HEADER-NAME.")
    if named and kind.default_header is not None:
        raise InvalidServerConfig(f"Give the header of {kind.name} with --oauth-header, not in the spec.")
    name_ok, _ = validate_header(chosen, "x")
    return kind, name_ok


@dataclass(frozen=True)
class OAuthProvider:
    """The upstream's OAuth provider, as the admin registered it (the secret encrypted at rest)."""

    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str = ""
    scopes: str = ""

    def __repr__(self) -> str:  # the client secret is a secret
        return f"OAuthProvider(authorize_url={self.authorize_url!r}, client_id={self.client_id!r})"

    def check(self) -> None:
        for label, url in (("authorize", self.authorize_url), ("token", self.token_url)):
            try:
                validate_upstream_url(url)
            except ValidationError as exc:
                raise InvalidServerConfig(f"The OAuth {label} URL: {' '.join(exc.messages)}") from exc
        if not self.client_id.strip():
            raise InvalidServerConfig("An OAuth user credential needs --oauth-client-id.")

    def public(self) -> dict[str, str]:
        """What may be shown and audited: everything but the secret."""
        return {"authorize_url": self.authorize_url, "token_url": self.token_url,
                "client_id": self.client_id, "scopes": self.scopes}


@dataclass(frozen=True)
class UserCredentialSettings:
    """A server's user credential as typed (``add_server --user-credential``, console); empty = none."""

    spec: str = ""
    oauth: OAuthProvider | None = None
    oauth_header: str = ""
    # Resolved by ``checked`` (None and "" until then, and for a server without one).
    kind: UserCredentialKind | None = None
    header: str = ""

    def checked(
        self, *, static_headers: Iterable[str], identity_header: str | None
    ) -> UserCredentialSettings:
        """These settings with kind and header resolved, or ``InvalidServerConfig``.

        The header must be none of the server's static headers nor its identity header: the
        upstream could not tell which one to believe.
        """
        if not self.spec.strip():
            if self.oauth is not None or self.oauth_header:
                raise InvalidServerConfig("The --oauth-* options need --user-credential oauth.")
            return self
        kind, header = parse_spec(self.spec, header=self.oauth_header)
        if header.lower() in RESERVED_HEADERS:
            raise InvalidServerConfig(f"Header {header} is managed by the gateway.")
        taken = {n.lower() for n in static_headers} | {identity_header.lower() if identity_header else ""}
        if header.lower() in taken:
            raise InvalidServerConfig(
                f"The server already sends {header} (a --header or its identity header); a person's "
                "credential needs a header of its own."
            )
        if kind.connect == "provider":
            if self.oauth is None:
                raise InvalidServerConfig(f"--user-credential {kind.name} needs the --oauth-* options.")
            self.oauth.check()
        elif self.oauth is not None:
            raise InvalidServerConfig(f"The --oauth-* options are for --user-credential {OAUTH.name}.")
        return replace(self, kind=kind, header=header)

    def fields(self) -> dict[str, object]:
        """The model fields (``UpstreamServer.user_credential*``), the client secret encrypted."""
        oauth = self.oauth if self.kind is not None and self.kind.connect == "provider" else None
        return {
            "user_credential": self.kind.name if self.kind else "",
            "user_credential_header": self.header,
            "user_oauth": oauth.public() if oauth else {},
            "user_oauth_secret_encrypted": encryption.encrypt(oauth.client_secret)
            if oauth and oauth.client_secret else "",
        }

    def audited(self) -> dict[str, object]:
        if self.kind is None:
            return {}
        oauth = self.fields()["user_oauth"]
        return {"user_credential": {"kind": self.kind.name, "header": self.header,
                                    **({"oauth": oauth} if oauth else {})}}


def provider_of(*, public: Mapping[str, str], secret_encrypted: str) -> OAuthProvider:
    """A stored provider, its secret decrypted (``RuntimeError`` if the key changed)."""
    return OAuthProvider(
        authorize_url=public.get("authorize_url", ""), token_url=public.get("token_url", ""),
        client_id=public.get("client_id", ""),
        client_secret=encryption.decrypt(secret_encrypted) if secret_encrypted else "",
        scopes=public.get("scopes", ""),
    )
