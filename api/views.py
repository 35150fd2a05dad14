"""REST API v1 views: authenticate, parse, call a service or selector, serialize. Nothing more.

Every request made with an API key is audited once as ``apikey.used`` (with its status and
outcome); every other refused request (no or bad credential, a session without the right role,
a validation error) is audited as ``auth.denied``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.urls import Resolver404, resolve
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny, BasePermission, OperandHolder, SingleOperandHolder
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from api.authentication import FAILURE_ATTR, ApiKeyAuthentication, ConsoleSessionAuthentication
from api.filters import AuditEventFilter, SessionFilter, TokenFilter
from api.pagination import Pagination, SessionPagination
from api.parsers import JsonParser
from api.schema import ApiAutoSchema
from api.serializers import (
    AuditEventSerializer,
    ErrorSerializer,
    MintedTokenSerializer,
    MintTokenRequestSerializer,
    RevokeTokenRequestSerializer,
    RotateTokenRequestSerializer,
    ServerSerializer,
    SessionSerializer,
    TokenSerializer,
)
from api.throttling import ApiKeyRateThrottle
from api.visibility import (
    ApiAccess,
    audit_visible_to,
    may_change_token,
    sessions_visible_to,
    tokens_visible_to,
)
from audit import events
from audit.models import AuditEvent
from audit.services import record
from gateway.models import SessionBinding
from gateway.services import end_session
from tokens.api_keys import (
    api_key_actor,
    default_ttl,
    mint_ci_token,
    record_api_key_use,
    requested_scope,
    rotate_ci_token,
)
from tokens.exceptions import InvalidTransition
from tokens.models import ApiKey, Token
from tokens.services import revoke_token
from upstreams.models import UpstreamServer

# --- shared plumbing ------------------------------------------------------------------------------

_ERROR_TEXT = {
    400: "The request is not valid (`invalid_request`).",
    401: "No credential, or not a valid API key (`not_authenticated`, `invalid_credentials`).",
    403: (
        "Not allowed: beyond the API key's ceiling, or not the caller's to change "
        "(`scope_ceiling_exceeded`, `forbidden`)."
    ),
    404: "No such object visible to the caller (`not_found`).",
    409: "The object is not in a state that allows this (`invalid_state`).",
    429: "Too many requests with this API key; see `Retry-After` (`throttled`).",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """OpenAPI entries for error responses, all in the one ``{"error", "detail"}`` shape."""
    return {code: OpenApiResponse(ErrorSerializer, description=_ERROR_TEXT[code]) for code in codes}


_COMMON = (401, 403, 429)


def client_ip(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def api_key_of(request: Request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


def owner_of(request: Request) -> User:
    """The caller as a user: the key's owner or the console user (``ApiAccess`` refused the rest)."""
    if not isinstance(request.user, User):
        raise exceptions.NotAuthenticated()
    return request.user


def actor_of(request: Request) -> str:
    api_key = api_key_of(request)
    return api_key_actor(api_key) if api_key is not None else request.user.get_username()


def _audit_request(request: Request, response: Response) -> None:
    try:
        user, auth = request.user, request.auth
    except exceptions.APIException:  # content negotiation failed before authentication ran
        user, auth = None, None
    code = response.data.get("error", "") if isinstance(response.data, dict) else ""
    message = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    user_agent = request.META.get("HTTP_USER_AGENT", "")
    if isinstance(auth, ApiKey):
        record_api_key_use(
            api_key=auth,
            method=request.method or "",
            path=request.path,
            status=response.status_code,
            client_ip=client_ip(request),
            user_agent=user_agent,
            detail={"error": code, "reason": message} if response.status_code >= 400 else None,
        )
        return
    if not 400 <= response.status_code < 500:
        return
    failure = getattr(request._request, FAILURE_ATTR, {})
    signed_in = user is not None and user.is_authenticated
    record(
        event=events.AUTH_DENIED,
        actor=failure.get("actor") or (user.get_username() if user is not None and signed_in else ""),
        client_ip=client_ip(request),
        user_agent=user_agent,
        outcome=AuditEvent.Outcome.DENIED,
        status=response.status_code,
        detail={
            "surface": "api",
            "method": request.method or "",
            "path": request.path,
            "error": code,
            "reason": failure.get("reason") or message,
            "presented": failure.get("presented", "session" if signed_in else "none"),
        },
    )


class ApiViewMixin:
    """Authentication, access rule, per-key throttle and the audit row of every API view."""

    # Typed as APIView's own attributes, which these override in every view.
    authentication_classes: Sequence[type[BaseAuthentication]] = [
        ApiKeyAuthentication,
        ConsoleSessionAuthentication,
    ]
    permission_classes: Sequence[type[BasePermission] | OperandHolder | SingleOperandHolder] = [ApiAccess]
    throttle_classes: Sequence[type[BaseThrottle]] = [ApiKeyRateThrottle]
    # JSON only: one request format to document and test. (A multipart body never reaches us
    # intact anyway: daphne's Twisted parses it first and answers a malformed one with an empty 400.)
    parser_classes: Sequence[type[BaseParser]] = [JsonParser]
    schema: ApiAutoSchema | None = ApiAutoSchema()

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        _audit_request(request, response)
        return response


# --- tokens ---------------------------------------------------------------------------------------

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
        responses={200: TokenSerializer(many=True), **errors(400, *_COMMON)},
    ),
    retrieve=extend_schema(
        summary="Get a token",
        description="One token (never its secret).",
        responses={200: TokenSerializer, **errors(404, *_COMMON)},
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
        responses={201: MintedTokenSerializer, **errors(400, *_COMMON)},
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
        responses={201: MintedTokenSerializer, **errors(400, 404, 409, *_COMMON)},
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
        responses={200: TokenSerializer, **errors(400, 404, 409, *_COMMON)},
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


# --- servers, sessions, audit ----------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List upstream servers",
        description="Registered servers and their gateway URLs. Upstream credentials are never shown.",
        responses={200: ServerSerializer(many=True), **errors(*_COMMON)},
    ),
    retrieve=extend_schema(
        summary="Get a server",
        description="One server by name.",
        responses={200: ServerSerializer, **errors(404, *_COMMON)},
    ),
)
class ServerViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ServerSerializer
    queryset = UpstreamServer.objects.order_by("name")
    lookup_field = "name"
    lookup_value_converter = "slug"
    filter_backends: list[type] = []


@extend_schema_view(
    list=extend_schema(
        summary="List gateway sessions",
        description="Sessions of tokens visible to the caller, newest first.",
        responses={200: SessionSerializer(many=True), **errors(400, *_COMMON)},
    ),
    retrieve=extend_schema(
        summary="Get a session",
        description="One session by its Mcp-Session-Id.",
        responses={200: SessionSerializer, **errors(404, *_COMMON)},
    ),
    destroy=extend_schema(
        summary="Terminate a session",
        description=(
            "End the session now: its open streams close within a second and the upstream is told "
            "(DELETE). The token itself stays valid."
        ),
        responses={204: None, **errors(404, 409, *_COMMON)},
    ),
)
class SessionViewSet(
    ApiViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = SessionSerializer
    filterset_class = SessionFilter
    pagination_class = SessionPagination
    lookup_value_converter = "str"

    def get_queryset(self) -> QuerySet[SessionBinding]:
        if getattr(self, "swagger_fake_view", False):
            return SessionBinding.objects.none()
        return sessions_visible_to(self.request.user).order_by("-created_at")

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        if not may_change_token(request.user, session.token):
            raise exceptions.PermissionDenied("Only staff or the token's owner can end its sessions.")
        ended = end_session(
            session_id=session.pk,
            status=SessionBinding.Status.TERMINATED,
            reason=f"terminated through the API by {actor_of(request)}",
            actor=actor_of(request),
            notify_upstream=True,
        )
        if not ended:
            raise InvalidTransition(f"The session has already ended ({session.status}).")
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="Browse the audit log",
        description=(
            "Events visible to the caller, newest first, with the console's filters. Keyset-paginated: "
            "follow `next` (a cursor URL) until it is null."
        ),
        responses={200: AuditEventSerializer(many=True), **errors(400, *_COMMON)},
    ),
    retrieve=extend_schema(
        summary="Get an audit event",
        description="One event, with its hash chain links.",
        responses={200: AuditEventSerializer, **errors(404, *_COMMON)},
    ),
)
class AuditEventViewSet(
    ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    pagination_class = Pagination
    lookup_value_converter = "int"

    def get_queryset(self) -> QuerySet[AuditEvent]:
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        return audit_visible_to(self.request.user).order_by("-id")


@extend_schema(exclude=True)
class NotFoundView(ApiViewMixin, APIView):
    """Any other path under /api/v1/: a JSON 404 instead of Django's HTML page."""

    permission_classes = [AllowAny]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        hint = ""
        try:
            with_slash = resolve(f"{request.path}/")
        except Resolver404:
            with_slash = None
        if with_slash is not None and with_slash.url_name != "api-not-found":
            hint = f" API paths end with a slash: {request.path}/"
        raise exceptions.NotFound(f"No API endpoint at {request.path}.{hint}")
