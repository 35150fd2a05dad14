"""Console roles: staff manage everything; members of the "auditor" group read everything."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

AUDITOR_GROUP = "auditor"

_Response = TypeVar("_Response", bound=HttpResponseBase)


def can_read_console(user: Any) -> bool:
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.is_staff or user.groups.filter(name=AUDITOR_GROUP).exists())
    )


def can_manage(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def console_reader_required(view: Callable[..., _Response]) -> Callable[..., _Response]:
    """Login required; staff or auditors may read. Others get 403."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> _Response:
        if not can_read_console(request.user):
            raise PermissionDenied("The console is for staff and auditors.")
        return view(request, *args, **kwargs)

    return wrapper


def console_admin_required(view: Callable[..., _Response]) -> Callable[..., _Response]:
    """Login required; only staff may change anything. Auditors get 403."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> _Response:
        if not can_manage(request.user):
            raise PermissionDenied("Only staff can change this.")
        return view(request, *args, **kwargs)

    return wrapper
