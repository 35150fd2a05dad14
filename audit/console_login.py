"""Console sign-ins and sign-outs go to the audit log, from Django's auth signals.

Only the username, client address and user agent are recorded; Django already replaces the
password in ``user_login_failed``'s credentials, and nothing here reads it. A failed attempt
records the username only when it names a real account, since a mistyped "username" is often the
password.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.http import HttpRequest

from audit import events
from audit.models import AuditEvent
from audit.services import record

_USERNAME_MAX = 150


def _request_fields(request: HttpRequest | None) -> dict[str, Any]:
    if request is None:
        return {}
    return {
        "client_ip": request.META.get("REMOTE_ADDR") or None,
        "user_agent": request.META.get("HTTP_USER_AGENT", ""),
    }


def _method(user: Any) -> str:
    """``oidc`` for a sign-in through the identity provider, ``password`` otherwise."""
    return "oidc" if getattr(user, "backend", "").endswith(".OidcBackend") else "password"


def on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    method = _method(user)
    detail = {"method": method, **({"issuer": settings.OIDC_ISSUER} if method == "oidc" else {})}
    record(event=events.CONSOLE_LOGIN, actor=user.get_username(), owner=user.get_username(),
           status=200, detail=detail, **_request_fields(request))


def on_login_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None,
                    **kwargs: Any) -> None:
    if credentials.get("method") == "oidc":  # sent by gatehouse/oidc_login.py, with its reason
        record(event=events.CONSOLE_LOGIN_FAILED, outcome=AuditEvent.Outcome.DENIED, status=401,
               detail={"method": "oidc", "issuer": settings.OIDC_ISSUER,
                       "reason": credentials.get("reason", "")},
               **_request_fields(request))
        return
    # People type their password into the username box: an unknown name is not recorded.
    username = str(credentials.get("username", ""))[:_USERNAME_MAX]
    user_model = get_user_model()
    known = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).exists()
    record(event=events.CONSOLE_LOGIN_FAILED, actor=username if known else "",
           outcome=AuditEvent.Outcome.DENIED, status=401,
           detail={"reason": "wrong password" if known else "unknown username"}, **_request_fields(request))


def on_logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None:  # logging out an already anonymous session
        return
    record(event=events.CONSOLE_LOGOUT, actor=user.get_username(), owner=user.get_username(),
           **_request_fields(request))


def connect() -> None:
    user_logged_in.connect(on_logged_in, dispatch_uid="audit.console_login")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit.console_login_failed")
    user_logged_out.connect(on_logged_out, dispatch_uid="audit.console_logout")
