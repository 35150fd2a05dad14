"""Console sign-in with OpenID Connect (mozilla-django-oidc), next to local accounts.

On when ``GATEHOUSE_OIDC_ISSUER`` is set. The provider's endpoints come from its discovery
document (``core/oidc_discovery.py``), read on the first sign-in and kept for an hour, so
startup never waits on the provider. Sign-in is the authorization-code flow with ``state`` and
``nonce``; the ID token is verified with the provider's published keys (RS256 or ES256).

Roles are the provider's to give, on every sign-in: a member of a group named in
``GATEHOUSE_OIDC_ADMIN_GROUPS`` is staff, of ``GATEHOUSE_OIDC_AUDITOR_GROUPS`` an auditor; whoever
is in neither signs in but the console refuses them (403), and losing a group at the provider
loses the role at the next sign-in. The username is the ``GATEHOUSE_OIDC_USERNAME_CLAIM`` claim
(an ``email`` only when ``email_verified`` is true). Users made this way are members of the
``sso`` group, and sign-in never takes over a local account of the same name.

``GATEHOUSE_LOCAL_LOGIN=false`` turns password sign-in off everywhere (``LocalPasswordBackend``
refuses, the login page shows only the provider's button). Both outcomes of an OIDC sign-in
reach the audit log through Django's login signals (``audit/console_login.py``), with
``method: oidc`` and, on failure, the reason; never a code or a token.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, User
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import LoginView
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from core.oidc_discovery import ProviderUnavailable, discover
from core.permissions import AUDITOR_GROUP

SSO_GROUP = "sso"
DISCOVERY_TTL_SECONDS = 3600.0
# mozilla-django-oidc setting -> the discovery document's field.
_ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
_discovered: dict[str, Any] = {}
_discovered_lock = threading.Lock()


def provider_setting(attr: str, *default: Any) -> Any:
    """A mozilla-django-oidc setting; the provider's endpoints from its discovery document."""
    if attr not in _ENDPOINTS:
        return import_from_settings(attr, *default)
    with _discovered_lock:
        if time.monotonic() - _discovered.get("at", float("-inf")) > DISCOVERY_TTL_SECONDS:
            _discovered.update(document=discover(settings.OIDC_ISSUER), at=time.monotonic())
        value = _discovered["document"].get(_ENDPOINTS[attr])
    if not isinstance(value, str):
        raise ProviderUnavailable(f"The provider's discovery document has no {_ENDPOINTS[attr]}.")
    return value


class LocalPasswordBackend(ModelBackend):
    """Django's password check, unless ``GATEHOUSE_LOCAL_LOGIN`` is off. OIDC users have no password."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> User | None:
        if not settings.LOCAL_LOGIN:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class SignInRefused(SuspiciousOperation):
    """An OIDC sign-in this gateway refuses; the message is the audit row's reason."""


class OidcBackend(OIDCAuthenticationBackend):
    get_settings = staticmethod(provider_setting)

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        # The verified ID token's claims, completed by the userinfo endpoint (some providers put
        # groups in only one of the two).
        return {**payload, **super().get_userinfo(access_token, id_token, payload)}

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        self._username(claims)  # raises with the reason when there is no usable name
        return True

    def _username(self, claims: dict[str, Any]) -> str:
        claim = settings.OIDC_USERNAME_CLAIM
        value = claims.get(claim)
        if not isinstance(value, str) or not value.strip():
            raise SignInRefused(f"the ID token has no {claim} claim")
        if claim == "email" and claims.get("email_verified") is not True:
            raise SignInRefused("the provider has not verified the email address")
        return value.strip()[:150]

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        users = User.objects.filter(username=self._username(claims))
        found = users.first()
        if found is not None and not found.groups.filter(name=SSO_GROUP).exists():
            raise SignInRefused(f"{found.get_username()} is a local account; it cannot be taken over by SSO")
        return users

    def create_user(self, claims: dict[str, Any]) -> User:
        user = User(username=self._username(claims), email=str(claims.get("email", ""))[:254])
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get_or_create(name=SSO_GROUP)[0])
        return self.update_user(user, claims)

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
        groups = {str(group) for group in groups} if isinstance(groups, list) else {str(groups)}
        user.is_staff = bool(groups & set(settings.OIDC_ADMIN_GROUPS))
        user.save(update_fields=["is_staff"])
        auditor = Group.objects.get_or_create(name=AUDITOR_GROUP)[0]
        if groups & set(settings.OIDC_AUDITOR_GROUPS):
            user.groups.add(auditor)
        else:
            user.groups.remove(auditor)
        return user

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        try:
            return super().get_or_create_user(access_token, id_token, payload)
        except SignInRefused as exc:
            self.request.oidc_refusal = str(exc)
            raise


class OidcStartView(OIDCAuthenticationRequestView):
    get_settings = staticmethod(provider_setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            return super().get(request)
        except ProviderUnavailable as exc:
            _audit_failure(request, f"provider unavailable: {exc}")
            return HttpResponse(f"Sign-in through {settings.OIDC_NAME} is unavailable: the identity "
                                "provider could not be reached. Try again shortly.", status=503,
                                content_type="text/plain")


class OidcCallbackView(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(provider_setting)

    def login_failure(self) -> HttpResponse:
        reason = getattr(self.request, "oidc_refusal", "") or "the provider's answer was refused"
        if "error" in self.request.GET:
            reason = f"the provider answered {self.request.GET.get('error', '')[:60]}"
        _audit_failure(self.request, reason)
        return super().login_failure()


def _audit_failure(request: HttpRequest, reason: str) -> None:
    user_login_failed.send(sender=OidcBackend, credentials={"method": "oidc", "reason": reason[:200]},
                           request=request)


class SignInView(LoginView):
    """The login page: the password form when local sign-in is on, the provider's button when
    OIDC is configured. A password POST while local sign-in is off is refused with 403."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(oidc_enabled=bool(settings.OIDC_ISSUER), oidc_name=settings.OIDC_NAME,
                       local_login=settings.LOCAL_LOGIN, sso_failed=self.request.GET.get("sso") == "failed")
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LOCAL_LOGIN:
            return HttpResponse(f"Password sign-in is switched off here; sign in with {settings.OIDC_NAME}.",
                                status=403, content_type="text/plain")
        return super().post(request, *args, **kwargs)
