"""``/api/v1/tokens/``: list, get, mint, rotate and revoke tokens."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api.filters import TokenFilter
from api.pagination import Pagination
from api.serializers import (
    MintedTokenSerializer,
    MintTokenRequestSerializer,
    RevokeTokenRequestSerializer,
    RotateTokenRequestSerializer,
    TokenSerializer,
)
from api.views.common import COMMON_ERRORS, ApiViewMixin, actor_of, api_key_of, client_ip, errors, owner_of
from api.visibility import (
    may_change_token,
    tokens_visible_to,
)
from tokens.api_keys import (
    default_ttl,
    mint_ci_token,
    requested_scope,
    rotate_ci_token,
)
from tokens.models import Token
from tokens.services import revoke_token

_MINT_EXAMPLE = OpenApiExample(
    "One tool for one CI run",
    value={"name": "ci-42", "servers": ["demo"], "tools": {"demo": ["echo"]}, "ttl": "1h"},
    request_only=True,
)
_MINTED_EXAMPLE = OpenApiExample(
    "Minted",
    value={
        "token": "gth_eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyJqdGkiOiIxYTJiM2M0ZC4uLiJ9.c2lnbmF0dXJl",
        "id": 42,
        "name": "ci-42",
        "display_prefix": "gth_1a2b3c4d",
        "jti": "1a2b3c4d5e6f708192a3b4c5d6e7f809",
        "owner": "ci-bot",
        "status": "active",
        "servers": ["demo"],
        "scope": {"demo": ["echo"]},
        "mcp_urls": {"demo": "https://gatehouse.example.com/mcp/demo/"},
        "created_at": "2026-11-25T10:00:00Z",
        "created_by": "ci-bot via gthk_k3y1d0000000_…",
        "expires_at": "2026-11-25T11:00:00Z",
        "last_used_at": None,
        "grace_until": None,
        "successor": None,
        "revoked_at": None,
        "revoked_by": "",
        "revoke_reason": "",
        "api_key": "gthk_k3y1d0000000_…",
    },
    response_only=True,
    status_codes=["201"],
)
_CEILING_EXAMPLE = OpenApiExample(
    "Beyond the key's ceiling",
    value={
        "error": "scope_ceiling_exceeded",
        "detail": "The request exceeds the API key's scope ceiling: tool demo:delete_everything.",
    },
    response_only=True,
    status_codes=["403"],
)
_UNKNOWN_SERVER_EXAMPLE = OpenApiExample(
    "Unknown server",
    value={"error": "invalid_request", "detail": "Unknown server(s): nope."},
    response_only=True,
    status_codes=["400"],
)


def minted_response(token: Token, secret: str) -> Response:
    """201 with the full token, the one response that ever holds it: never cached."""
    return Response(
        {"token": secret, **TokenSerializer(token).data},
        status=status.HTTP_201_CREATED,
        headers={"Cache-Control": "no-store"},
    )


@extend_schema_view(
    list=extend_schema(
        summary="List tokens",
        description="Tokens visible to the caller (never their secrets), newest first, keyset-paginated.",
        responses={200: TokenSerializer(many=True), **errors(400, *COMMON_ERRORS)},
    ),
    retrieve=extend_schema(
        summary="Get a token",
        description="One token (never its secret).",
        responses={200: TokenSerializer, **errors(404, *COMMON_ERRORS)},
    ),
)
class TokenViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TokenSerializer
    filterset_class = TokenFilter
    pagination_class = Pagination
    lookup_value_converter = "int"

    def get_queryset(self) -> QuerySet[Token]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Token.objects.none()
        return tokens_visible_to(self.request.user).order_by("-id")

    def _changeable(self) -> Token:
        token = self.get_object()
        if not may_change_token(self.request.user, token):
            raise exceptions.PermissionDenied("Only staff or the token's owner can change it.")
        return token

    @extend_schema(
        summary="Mint a token",
        description=(
            "Mint a token owned by the caller. With an API key the scope and TTL must stay within the "
            "key's ceiling and maximum TTL (403 naming what exceeded it). `tools` omitted, or a server "
            "missing from it, allows all of that server's tools. The `token` is in this response only."
        ),
        request=MintTokenRequestSerializer,
        responses={201: MintedTokenSerializer, **errors(400, *COMMON_ERRORS)},
        examples=[_MINT_EXAMPLE, _MINTED_EXAMPLE, _CEILING_EXAMPLE, _UNKNOWN_SERVER_EXAMPLE],
    )
    def create(self, request: Request) -> Response:
        body = MintTokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        api_key = api_key_of(request)
        issued = mint_ci_token(
            owner=owner_of(request),
            api_key=api_key,
            name=data["name"],
            scope=requested_scope(servers=data["servers"], tools=data.get("tools")),
            ttl=data["ttl"] if "ttl" in data else default_ttl(api_key=api_key),
            actor=actor_of(request),
            client_ip=client_ip(request),
        )
        return minted_response(issued.token, issued.secret)

    @extend_schema(
        summary="Rotate a token",
        description=(
            "Mint a successor with the same scope and lifetime; the old token keeps working for "
            "`grace` (default 0), then counts as revoked. The successor's `token` is in this response only."
        ),
        request=RotateTokenRequestSerializer,
        responses={201: MintedTokenSerializer, **errors(400, 404, 409, *COMMON_ERRORS)},
        examples=[OpenApiExample("Ten minutes of overlap", value={"grace": "10m"}, request_only=True)],
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        token = self._changeable()
        body = RotateTokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        issued = rotate_ci_token(
            token=token,
            api_key=api_key_of(request),
            grace=body.validated_data["grace"],
            actor=actor_of(request),
            client_ip=client_ip(request),
        )
        return minted_response(issued.token, issued.secret)

    @extend_schema(
        summary="Revoke a token",
        description="Effective at once for new requests and, within a second, for open streams.",
        request=RevokeTokenRequestSerializer,
        responses={200: TokenSerializer, **errors(400, 404, 409, *COMMON_ERRORS)},
        examples=[OpenApiExample("CI run finished", value={"reason": "ci-42 finished"}, request_only=True)],
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        token = self._changeable()
        body = RevokeTokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token = revoke_token(
            token=token,
            actor=actor_of(request),
            reason=body.validated_data["reason"],
            client_ip=client_ip(request),
        )
        return Response(TokenSerializer(tokens_visible_to(request.user).get(pk=token.pk)).data)
