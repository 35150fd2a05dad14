"""``/api/v1/audit/``: the audit log, with the console's filters."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, viewsets

from api.filters import AuditEventFilter
from api.pagination import Pagination
from api.serializers import (
    AuditEventSerializer,
)
from api.views.common import COMMON_ERRORS, ApiViewMixin, errors
from api.visibility import (
    audit_visible_to,
)
from audit.models import AuditEvent


@extend_schema_view(
    list=extend_schema(
        summary="Browse the audit log",
        description=(
            "Events visible to the caller, newest first, with the console's filters. Keyset-paginated: "
            "follow `next` (a cursor URL) until it is null."
        ),
        responses={200: AuditEventSerializer(many=True), **errors(400, *COMMON_ERRORS)},
    ),
    retrieve=extend_schema(
        summary="Get an audit event",
        description="One event, with its hash chain links.",
        responses={200: AuditEventSerializer, **errors(404, *COMMON_ERRORS)},
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
