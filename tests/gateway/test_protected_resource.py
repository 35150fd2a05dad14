"""RFC 9728 protected-resource metadata, where 401 challenges point."""

from django.conf import settings


def test_metadata_names_the_gateway_resource(client):
    response = client.get("/.well-known/oauth-protected-resource")
    assert response.status_code == 200
    body = response.json()
    assert body["resource"] == f"{settings.PUBLIC_URL}/mcp"
    assert body["bearer_methods_supported"] == ["header"]


def test_path_inserted_metadata_names_one_server(client):
    response = client.get("/.well-known/oauth-protected-resource/mcp/demo/")
    assert response.json()["resource"] == f"{settings.PUBLIC_URL}/mcp/demo/"
