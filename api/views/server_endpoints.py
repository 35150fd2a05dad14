"""``/api/v1/servers/``: the registered upstream servers (never their credentials)."""

from __future__ import annotations

from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, viewsets

from api.serializers import (
    ServerSerializer,
)
from api.views.common import COMMON_ERRORS, ApiViewMixin, errors
from upstreams.models import UpstreamServer


@extend_schema_view(
    list=extend_schema(
        summary="List upstream servers",
        description="Registered servers and their gateway URLs. Upstream credentials are never shown.",
        responses={200: ServerSerializer(many=True), **errors(*COMMON_ERRORS)},
    ),
    retrieve=extend_schema(
        summary="Get a server",
        description="One server by name.",
        responses={200: ServerSerializer, **errors(404, *COMMON_ERRORS)},
    ),
)
class ServerViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ServerSerializer
    queryset = UpstreamServer.objects.order_by("name")
    lookup_field = "name"
    lookup_value_converter = "slug"
    filter_backends: list[type] = []
