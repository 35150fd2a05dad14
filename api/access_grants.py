"""``/api/v1/grants/``: who may get tokens by themselves (through OAuth), for staff.

Thin over ``tokens.oauth.grants``: a POST grants (replacing that subject's grant for each named
server), a DELETE removes one grant; either revokes at once the OAuth tokens that no longer fit.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from api.views import ApiViewMixin, errors
from core.permissions import can_manage
from tokens.oauth import grants
from tokens.oauth.exceptions import GrantError
from tokens.oauth.models import AccessGrant
from tokens.ttl import parse_ttl


class StaffOnly(BasePermission):
    """Grants decide what people may give themselves: only staff read or change them."""

    message = "Only staff can read or change grants."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and can_manage(request.user))


class GrantSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True, default=None)
    group = serializers.CharField(source="group.name", read_only=True, default=None)

    class Meta:
        model = AccessGrant
        fields = ["id", "user", "group", "server", "tools", "max_ttl_seconds", "created_at", "created_by"]


class GrantRequest(serializers.Serializer):
    user = serializers.CharField(required=False, help_text="Username (or give group).")
    group = serializers.CharField(required=False, help_text="Group name (or give user).")
    servers = serializers.ListField(child=serializers.CharField(), allow_empty=False)
    tools = serializers.ListField(child=serializers.CharField(), required=False,
                                  help_text="Tools on those servers; 'server:tool' pins one. Omitted: all.")
    max_ttl = serializers.CharField(required=False, help_text="Longest token, e.g. 8h. Omitted: the default.")


@extend_schema_view(
    list=extend_schema(summary="List grants",
                       responses={200: GrantSerializer(many=True), **errors(401, 403)}),
    create=extend_schema(summary="Grant access", request=GrantRequest,
                         responses={201: GrantSerializer(many=True), **errors(400, 401, 403)}),
    destroy=extend_schema(summary="Remove a grant (revokes the OAuth tokens beyond what is left)",
                          responses={204: None, **errors(401, 403, 404)}),
)
class GrantViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = GrantSerializer
    permission_classes = [StaffOnly]
    filter_backends: list[type] = []
    pagination_class = None

    def get_queryset(self) -> QuerySet[AccessGrant]:
        return AccessGrant.objects.select_related("user", "group").order_by("server", "id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = GrantRequest(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        user = User.objects.filter(username=data["user"]).first() if data.get("user") else None
        group = Group.objects.filter(name=data["group"]).first() if data.get("group") else None
        if (user is None) == (group is None):
            raise GrantError("Name exactly one existing user or group.")
        made = grants.grant_access(
            user=user, group=group, servers=data["servers"], tools=data.get("tools", []),
            max_ttl=parse_ttl(data["max_ttl"], name="max_ttl") if data.get("max_ttl") else None,
            actor=request.user.get_username(),
        )
        return Response(GrantSerializer(made, many=True).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: AccessGrant) -> None:
        grants.revoke_access(user=instance.user, group=instance.group, servers=[instance.server],
                             actor=self.request.user.get_username())
