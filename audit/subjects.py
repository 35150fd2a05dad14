"""What the audit pages may show about the token an event names, told to audit by the tokens app.

Audit sits below tokens (tokens record audit events), so it cannot read the token table itself;
the tokens app installs its lookup at start-up (``TokensConfig.ready``). Without it (audit used
alone) events still show their token's display prefix and jti, just no link to a token page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenSubject:
    pk: int
    name: str
    status_display: str
    owner: str


TokenLookup = Callable[[str], "TokenSubject | None"]

_lookup: TokenLookup = lambda jti: None  # noqa: E731 - replaced by the tokens app at start-up


def install_token_lookup(lookup: TokenLookup) -> None:
    global _lookup
    _lookup = lookup


def token_by_jti(jti: str) -> TokenSubject | None:
    return _lookup(jti) if jti else None
