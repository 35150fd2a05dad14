"""The OpenAPI contract at /api/v1/schema/ and the offline docs at /api/v1/docs/."""

from __future__ import annotations

import re

import yaml
from django.test import Client
from drf_spectacular.validation import validate_schema


def schema(client: Client) -> dict:
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_is_valid_openapi_3_and_needs_no_credential(db):
    document = schema(Client())

    assert document["openapi"].startswith("3.")
    validate_schema(document)
    assert {
        "/api/v1/tokens/",
        "/api/v1/tokens/{id}/",
        "/api/v1/tokens/{id}/rotate/",
        "/api/v1/tokens/{id}/revoke/",
        "/api/v1/servers/",
        "/api/v1/sessions/",
        "/api/v1/sessions/{id}/",
        "/api/v1/audit/",
    } <= set(document["paths"])


def test_schema_declares_the_api_key_bearer_scheme(db):
    document = schema(Client())

    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert {"ApiKey": []} in document["paths"]["/api/v1/tokens/"]["post"]["security"]


def test_mint_operation_has_request_and_response_examples(db):
    mint = schema(Client())["paths"]["/api/v1/tokens/"]["post"]

    request_examples = mint["requestBody"]["content"]["application/json"]["examples"]
    assert any(e["value"].get("tools") == {"demo": ["echo"]} for e in request_examples.values())
    created = mint["responses"]["201"]["content"]["application/json"]["examples"]
    assert any(e["value"]["token"].startswith("gth_") for e in created.values())
    refused = mint["responses"]["403"]["content"]["application/json"]["examples"]
    assert any(e["value"]["error"] == "scope_ceiling_exceeded" for e in refused.values())


def test_every_error_response_uses_the_error_shape(db):
    for path, operations in schema(Client())["paths"].items():
        # Token exchange speaks OAuth: RFC 6749 §5.2 errors, which its clients expect.
        shape = "/OAuthError" if path == "/api/v1/token-exchange/" else "/Error"
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith(shape), (path, method, status)


def test_docs_load_their_assets_from_this_server(db):
    client = Client()
    page = client.get("/api/v1/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "/api/v1/schema/" in html
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
    assert assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200, asset
