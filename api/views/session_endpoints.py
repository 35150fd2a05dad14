"""``/api/v1/sessions/``: MCP sessions, and ending one."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from api.filters import SessionFilter
from api.pagination import SessionPagination
from api.serializers import (
    SessionSerializer,
)
from api.views.common import COMMON_ERRORS, ApiViewMixin, actor_of, errors
from api.visibility import (
    may_change_token,
    sessions_visible_to,
)
from gateway.models import SessionBinding
from gateway.services import end_session
from tokens.exceptions import InvalidTransition


@extend_schema_view(
    list=extend_schema(
        summary="List gateway sessions",
        description="Sessions of tokens visible to the caller, newest first.",
        responses={200: SessionSerializer(many=True), **errors(400, *COMMON_ERRORS)},
    ),
    retrieve=extend_schema(
        summary="Get a session",
        description="One session by its Mcp-Session-Id.",
        responses={200: SessionSerializer, **errors(404, *COMMON_ERRORS)},
    ),
    destroy=extend_schema(
        summary="Terminate a session",
        description=(
            "End the session now: its open streams close within a second and the upstream is told "
            "(DELETE). The token itself stays valid."
        ),
        responses={204: None, **errors(404, 409, *COMMON_ERRORS)},
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
