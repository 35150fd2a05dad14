"""What every API view shares: authentication, access rule, throttle, error documentation and
the one audit row per request; and the JSON 404 for any other path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.urls import Resolver404, resolve
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
)
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny, BasePermission, OperandHolder, SingleOperandHolder
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from api.authentication import FAILURE_ATTR, ApiKeyAuthentication, ConsoleSessionAuthentication
from api.parsers import JsonParser
from api.schema import ApiAutoSchema
from api.serializers import (
    ErrorSerializer,
)
from api.throttling import ApiKeyRateThrottle
from api.visibility import (
    ApiAccess,
)
from audit import events
from audit.models import AuditEvent
from audit.services import record
from tokens.api_keys import (
    api_key_actor,
    record_api_key_use,
)
from tokens.models import ApiKey

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


COMMON_ERRORS = (401, 403, 429)


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
