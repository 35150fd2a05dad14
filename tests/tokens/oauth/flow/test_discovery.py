"""Discovery: RFC 9728 names Gatehouse as the authorization server, RFC 8414 describes it."""

from __future__ import annotations

from django.conf import settings


def test_protected_resource_metadata_names_gatehouse_as_its_authorization_server(client):
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp/demo/"):
        body = client.get(path).json()
        assert body["authorization_servers"] == [settings.PUBLIC_URL]
    assert client.get("/.well-known/oauth-protected-resource/mcp/demo/").json()["scopes_supported"] == [
        "mcp:demo"
    ]


def test_authorization_server_metadata_is_rfc_8414_with_s256_only(client):
    body = client.get("/.well-known/oauth-authorization-server").json()
    assert body["issuer"] == settings.PUBLIC_URL
    assert body["authorization_endpoint"] == f"{settings.PUBLIC_URL}/oauth/authorize"
    assert body["token_endpoint"] == f"{settings.PUBLIC_URL}/oauth/token"
    assert body["registration_endpoint"] == f"{settings.PUBLIC_URL}/oauth/register"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["client_id_metadata_document_supported"] is True
    assert "none" in body["token_endpoint_auth_methods_supported"]
