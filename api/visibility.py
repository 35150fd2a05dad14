"""Which rows an API caller may see and change.

An API key acts as its owner. Staff and auditors (the console's readers) see every token, session
and audit event; anyone else sees only what belongs to them: tokens they own (minted by any of
their keys, or issued to them in the console), sessions of those tokens, and audit events whose
owner is them. Changing a token or ending a session needs staff, or ownership of the token.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from audit.models import AuditEvent
from core.permissions import can_manage, can_read_console
from gateway.models import SessionBinding
from tokens.models import ApiKey, Token


def tokens_visible_to(user: Any) -> QuerySet[Token]:
    tokens = Token.objects.select_related("owner", "api_key", "successor", "oauth_connection__client")
    return tokens if can_read_console(user) else tokens.filter(owner=user)


def sessions_visible_to(user: Any) -> QuerySet[SessionBinding]:
    sessions = SessionBinding.objects.select_related("token", "token__owner", "server")
    return sessions if can_read_console(user) else sessions.filter(token__owner=user)


def audit_visible_to(user: Any) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    return events if can_read_console(user) else events.filter(owner=user.get_username())


def may_change_token(user: Any, token: Token) -> bool:
    return can_manage(user) or token.owner_id == user.pk


class ApiAccess(BasePermission):
    """API keys may call every endpoint (rows are then limited as above). A console session may
    read as staff or auditor, and change things only as staff."""

    message = (
        "Console sessions can read the API as staff or auditors and change things only as staff; "
        "CI should use an API key."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if isinstance(request.auth, ApiKey):
            return True
        return can_read_console(user) if request.method in SAFE_METHODS else can_manage(user)
