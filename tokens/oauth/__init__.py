"""Gatehouse as an OAuth 2.1 authorization server for MCP clients.

Grants say who may get which tokens without an admin; the protocol (authorization code with PKCE,
refresh, registration, revocation) hands out ordinary ``gth_`` tokens within them. The protocol's
decisions live in ``validator``; ``services`` writes, ``selectors`` reads, ``views`` translate.
"""
