"""Keyset pagination for every list of the API: stable under inserts, fast at any depth."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Field, QuerySet
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.views import APIView

# Keyset positions of integer columns must fit the database's 64-bit integers.
_MAX_INTEGER_POSITION = 2**63 - 1


class Pagination(CursorPagination):
    """Follow ``next``; the cursor is opaque.

    A malformed ``cursor`` or ``page_size`` is the caller's mistake: 400, not DRF's 404, a 500
    from the database, or a silently different page size. Cursors are base64 that anyone can
    forge, so the position inside one is checked against the ordering column before use.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"

    def paginate_queryset(
        self, queryset: QuerySet, request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        self._position_field = queryset.model._meta.get_field(self.ordering.lstrip("-"))
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if not raw:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def decode_cursor(self, request: Request) -> Any:
        if not request.query_params.get(self.cursor_query_param):
            return None
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound as exc:
            raise self._not_a_cursor() from exc
        if cursor is not None and cursor.position is not None and not self._valid_position(cursor.position):
            raise self._not_a_cursor()
        return cursor

    def _valid_position(self, position: str | int) -> bool:
        # DRF decodes the position from the cursor as a string; its stubs say int.
        field: Field = self._position_field
        try:
            value = field.to_python(position)
        except DjangoValidationError:
            return False
        if isinstance(value, int):
            return abs(value) <= _MAX_INTEGER_POSITION
        if isinstance(value, datetime):
            return timezone.is_aware(value)  # ours always carry their offset
        return value is not None

    def _not_a_cursor(self) -> exceptions.ValidationError:
        return exceptions.ValidationError(
            {self.cursor_query_param: ["Not a cursor from this API; follow the next/previous links."]}
        )

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters


class SessionPagination(Pagination):
    ordering = "-created_at"
