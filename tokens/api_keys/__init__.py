"""API keys: the REST API's credential for CI (``services``), and their console pages (``views``,
``forms``). The services' public names are importable from here."""

from tokens.api_keys.services import (
    KEY_ID_LENGTH,
    LAST_USED_INTERVAL,
    SECRET_LENGTH,
    CreatedApiKey,
    api_key_actor,
    authenticate_api_key,
    create_api_key,
    default_ttl,
    masked_api_key,
    mint_ci_token,
    record_api_key_use,
    requested_scope,
    revoke_api_key,
    rotate_ci_token,
)

__all__ = [
    "KEY_ID_LENGTH",
    "LAST_USED_INTERVAL",
    "SECRET_LENGTH",
    "CreatedApiKey",
    "api_key_actor",
    "authenticate_api_key",
    "create_api_key",
    "default_ttl",
    "masked_api_key",
    "mint_ci_token",
    "record_api_key_use",
    "requested_scope",
    "revoke_api_key",
    "rotate_ci_token",
]
