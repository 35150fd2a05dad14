"""Trusted external issuers: identity providers whose JWTs Gatehouse accepts.

Two ways in, one verification (``verification.verify_external``): a CI job trades its provider
token for a Gatehouse token (RFC 8693 token exchange, ``services.exchange_token``), or, for an
issuer marked ``direct``, the gateway takes the provider's JWT as the bearer token itself
(``direct.direct_token_row``, called only by ``tokens.services.authenticate_token``).
"""
