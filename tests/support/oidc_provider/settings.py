"""A real OpenID Connect provider for the test suite: django-oauth-toolkit, its own process and DB.

Everything comes from the environment the fixture (``tests/support/oidc.py``) sets:
``OIDC_PROVIDER_DB`` (SQLite file), ``OIDC_PROVIDER_ISSUER`` (``http://127.0.0.1:PORT/o``),
``OIDC_PROVIDER_KEYS`` (a directory: ``active.pem`` signs, ``inactive-*.pem`` are still published
in the JWKS, which is how a key rotation looks from outside), ``OIDC_PROVIDER_USERS`` (JSON: the
users, their passwords and the extra claims their id_tokens carry).
"""

from __future__ import annotations

import os
from pathlib import Path

_KEYS = Path(os.environ["OIDC_PROVIDER_KEYS"])

SECRET_KEY = "oidc-provider-for-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oauth2_provider",
    "tests.support.oidc_provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.support.oidc_provider.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["OIDC_PROVIDER_DB"]}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
}]
LOGIN_URL = "/login/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; test users only
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": os.environ["OIDC_PROVIDER_ISSUER"],
    "OIDC_RSA_PRIVATE_KEY": (_KEYS / "active.pem").read_text(),
    "OIDC_RSA_PRIVATE_KEYS_INACTIVE": [path.read_text() for path in sorted(_KEYS.glob("inactive-*.pem"))],
    "OAUTH2_VALIDATOR_CLASS": "tests.support.oidc_provider.validator.ClaimsValidator",
    "SCOPES": {"openid": "OpenID Connect", "email": "Email", "profile": "Profile"},
    "PKCE_REQUIRED": False,
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
