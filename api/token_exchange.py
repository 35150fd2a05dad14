"""``POST /api/v1/token-exchange/``: RFC 8693 token exchange, the edge of ``tokens.issuers.exchange``.

Form-encoded in, JSON out, no API key: the subject token is the credential. Every error is an
RFC 6749 §5.2 body (``{"error": …, "error_description": …}``) with 400, except too many requests
from one address (429 with ``Retry-After``). Answers are never cached (``Cache-Control: no-store``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from tokens.issuers.exchange import GRANT_TYPE, ISSUED_TOKEN_TYPE, ExchangeRefused, exchange_token

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class ExchangeRateThrottle(AnonRateThrottle):
    """Per client address: the endpoint needs no key, so the address is what there is to limit."""

    scope = "token_exchange"

    def get_rate(self) -> str | None:
        rates = cast(Mapping[str, str | None], settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}))
        return rates.get(self.scope)


class TokenExchangeRequest(serializers.Serializer):
    grant_type = serializers.CharField(help_text=GRANT_TYPE)
    subject_token = serializers.CharField(
        help_text="The trusted issuer's JWT (e.g. a GitHub Actions OIDC token)."
    )
    subject_token_type = serializers.CharField(
        help_text="urn:ietf:params:oauth:token-type:jwt or urn:ietf:params:oauth:token-type:id_token"
    )
    resource = serializers.CharField(required=False, help_text="A gateway server URL: only that server.")
    scope = serializers.CharField(required=False, help_text="Tool names, space separated, to narrow to them.")


class TokenExchangeResponse(serializers.Serializer):
    access_token = serializers.CharField()
    issued_token_type = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


class OAuthError(serializers.Serializer):
    error = serializers.CharField()
    error_description = serializers.CharField()


def _oauth_error(error: str, description: str, *, code: int = status.HTTP_400_BAD_REQUEST,
                 headers: dict[str, str] | None = None) -> Response:
    return Response({"error": error, "error_description": description}, status=code,
                    headers={**_NO_STORE, **(headers or {})})


class TokenExchangeView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser]
    throttle_classes = [ExchangeRateThrottle]

    @extend_schema(
        summary="Exchange a trusted issuer's token for a Gatehouse token (RFC 8693)",
        request={"application/x-www-form-urlencoded": TokenExchangeRequest},
        responses={
            200: TokenExchangeResponse, 400: OpenApiResponse(OAuthError), 429: OpenApiResponse(OAuthError)
        },
        examples=[OpenApiExample(
            "Error", value={"error": "invalid_grant", "error_description": "The token has expired."},
            response_only=True, status_codes=["400"],
        )],
        auth=[],
    )
    def post(self, request: Request) -> Response:
        form = request.data
        fields = {name: form.get(name, "") for name in
                  ("grant_type", "subject_token", "subject_token_type", "resource", "scope")}
        if any(not isinstance(value, str) for value in fields.values()):
            return _oauth_error("invalid_request", "Every parameter is a single string.")
        try:
            exchanged = exchange_token(**fields, client_ip=request.META.get("REMOTE_ADDR"))
        except ExchangeRefused as refused:
            return _oauth_error(refused.error, refused.description)
        return Response(
            {"access_token": exchanged.issued.secret, "issued_token_type": ISSUED_TOKEN_TYPE,
             "token_type": "Bearer", "expires_in": exchanged.expires_in},
            headers=_NO_STORE,
        )

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, exceptions.Throttled):
            # DRF sets ``wait`` in Throttled.__init__; its stubs leave the attribute out.
            wait = max(1, math.ceil(exc.wait or 1))  # type: ignore[attr-defined]
            return _oauth_error("slow_down", f"Too many exchanges from this address; retry in {wait} s.",
                                code=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(wait)})
        if isinstance(exc, exceptions.UnsupportedMediaType | exceptions.ParseError):
            return _oauth_error("invalid_request", "Send the parameters form-encoded "
                                "(application/x-www-form-urlencoded).")
        if isinstance(exc, exceptions.MethodNotAllowed):
            return _oauth_error("invalid_request", "Use POST.", code=status.HTTP_405_METHOD_NOT_ALLOWED,
                                headers={"Allow": "POST"})
        return super().handle_exception(exc)
