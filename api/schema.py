"""OpenAPI additions: the API key as a bearer scheme, and query filters documented as they behave."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the API key as an HTTP bearer scheme in the OpenAPI schema."""

    target_class = "api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "gthk_<key_id>_<secret>",
            "description": "An API key created in the console (API keys) or with `gatehouse create_api_key`.",
        }


class ConsoleSessionScheme(OpenApiAuthenticationExtension):
    """The console's session cookie (same as DRF's SessionAuthentication), CSRF header required."""

    target_class = "api.authentication.ConsoleSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "A console login; unsafe methods also need the X-CSRFToken header.",
        }


_RESPONSE_HEADERS = [
    OpenApiParameter(
        "Retry-After",
        int,
        OpenApiParameter.HEADER,
        response=[429],
        required=True,
        description="Seconds until this API key may call again.",
    ),
    OpenApiParameter(
        "WWW-Authenticate",
        str,
        OpenApiParameter.HEADER,
        response=[401],
        required=True,
        description='The accepted scheme: `Bearer realm="gatehouse-api"`.',
    ),
]


class ApiAutoSchema(AutoSchema):
    """Documents the headers of 401 and 429 answers, and that an empty filter value (``?status=``)
    means "no filter", as in the console's forms."""

    def get_override_parameters(self) -> list[Any]:
        return [*super().get_override_parameters(), *_RESPONSE_HEADERS]

    def _get_filter_parameters(self) -> list[dict[str, Any]]:
        return [{**parameter, "allowEmptyValue": True} for parameter in super()._get_filter_parameters()]

    def _get_pagination_parameters(self) -> list[dict[str, Any]]:
        return [{**parameter, "allowEmptyValue": True} for parameter in super()._get_pagination_parameters()]
