"""REST API v1 views: authenticate, parse, call a service or selector, serialize. Nothing more.

Every request made with an API key is audited once as ``apikey.used`` (with its status and
outcome); every other refused request (no or bad credential, a session without the right role,
a validation error) is audited as ``auth.denied``.
"""

from api.views.audit_endpoints import AuditEventViewSet
from api.views.common import (
    COMMON_ERRORS,
    ApiViewMixin,
    NotFoundView,
    actor_of,
    api_key_of,
    client_ip,
    errors,
    owner_of,
)
from api.views.server_endpoints import ServerViewSet
from api.views.session_endpoints import SessionViewSet
from api.views.token_endpoints import TokenViewSet, minted_response

__all__ = (
    "COMMON_ERRORS",
    "ApiViewMixin",
    "AuditEventViewSet",
    "NotFoundView",
    "ServerViewSet",
    "SessionViewSet",
    "TokenViewSet",
    "actor_of",
    "api_key_of",
    "client_ip",
    "errors",
    "minted_response",
    "owner_of",
)
