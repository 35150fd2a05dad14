"""The provider's claims: each user's id_token carries the extra claims the users file gives it.

A ``sub`` there replaces the numeric default, which is how a GitHub-Actions-shaped subject
(``repo:acme/app:ref:refs/heads/main``) comes out of a real provider. Every claim is released
whatever the scopes: these are test users.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from oauth2_provider.oauth2_validators import OAuth2Validator


class ClaimsValidator(OAuth2Validator):
    oidc_claim_scope = None  # release every claim below, not only the standard ones

    def get_additional_claims(self, request: Any) -> dict[str, Any]:
        users = json.loads(Path(os.environ["OIDC_PROVIDER_USERS"]).read_text())
        return dict(users.get(request.user.get_username(), {}).get("claims", {}))
