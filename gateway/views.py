"""Django views of the gateway: RFC 9728 protected-resource metadata."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from tokens.oauth.selectors import scopes_supported


@require_GET
def protected_resource_metadata(request: HttpRequest, resource_path: str = "") -> JsonResponse:
    """Where MCP clients learn that this resource takes bearer tokens (and whose).

    ``/.well-known/oauth-protected-resource`` describes the gateway's MCP endpoint;
    ``/.well-known/oauth-protected-resource/mcp/<server>/`` (RFC 9728 path insertion) one server.
    """
    path = "/" + resource_path if resource_path else "/mcp"
    server = resource_path.strip("/").partition("/")[2] or None
    response = JsonResponse(
        {
            "resource": f"{settings.PUBLIC_URL}{path}",
            # Gatehouse is its own authorization server (tokens/oauth), issuer = PUBLIC_URL.
            "authorization_servers": [settings.PUBLIC_URL],
            "scopes_supported": scopes_supported(server),
            "bearer_methods_supported": ["header"],
            "resource_name": "Gatehouse MCP gateway",
            "resource_documentation": f"{settings.PUBLIC_URL}/console/",
        }
    )
    response["Cache-Control"] = "public, max-age=3600"
    response["Access-Control-Allow-Origin"] = "*"
    return response
