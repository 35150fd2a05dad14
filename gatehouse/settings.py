"""Gatehouse settings: twelve-factor, read only from the environment.

With no environment at all Gatehouse runs embedded: SQLite, an in-memory channel layer and
Celery's filesystem transport, all under ``GATEHOUSE_DATA_DIR`` (default ``var/``). Setting
``DATABASE_URL`` and ``REDIS_URL`` switches to PostgreSQL and Redis for scale-out.
``GATEHOUSE_PRODUCTION=true`` turns on the hardened profile and refuses to start without
``GATEHOUSE_SECRET_KEY`` and ``GATEHOUSE_ALLOWED_HOSTS``.

Importing this module reads the environment (and the generated key file, once there is one) and
nothing else: it creates no directory and writes no file. The data dir, the filesystem broker's
folders and the generated secret key are made by ``manage.py prepare_data_dir`` (see
core/data_dir.py), which ``make run`` and ``manage.py serve`` run before starting anything.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import environ
from django.core.exceptions import ImproperlyConfigured

from core.data_dir import SECRET_KEY_FILENAME, read_secret_key
from core.environment import StrictEnv
from core.oidc_discovery import is_provider_url

BASE_DIR = Path(__file__).resolve().parent.parent

# Every value below comes from the environment; a bad value stops startup naming the variable.
env = StrictEnv()

DATA_DIR = Path(env.str("GATEHOUSE_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()

PRODUCTION = env.bool("GATEHOUSE_PRODUCTION", default=False)
DEBUG = env.bool("GATEHOUSE_DEBUG", default=False)


def _required(name: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(
            f"{name} is required when GATEHOUSE_PRODUCTION is on; see docs/configuration.md."
        )
    return value


if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("GATEHOUSE_DEBUG must be off when GATEHOUSE_PRODUCTION is on.")
    SECRET_KEY = _required("GATEHOUSE_SECRET_KEY")
    SECRET_KEY_FILE = None
    _required("GATEHOUSE_ALLOWED_HOSTS")
    ALLOWED_HOSTS = env.list("GATEHOUSE_ALLOWED_HOSTS")
else:
    # GATEHOUSE_SECRET_KEY, else the key `manage.py prepare_data_dir` generated into the data dir
    # (SECRET_KEY_FILE, None when the environment gives the key). Before that step has run the key
    # is empty: Django refuses to use it, and the gatehouse.E001 check names the step to run.
    SECRET_KEY = env.str("GATEHOUSE_SECRET_KEY", default="")
    SECRET_KEY_FILE = None if SECRET_KEY else DATA_DIR / SECRET_KEY_FILENAME
    if SECRET_KEY_FILE is not None:
        SECRET_KEY = read_secret_key(SECRET_KEY_FILE)
    ALLOWED_HOSTS = env.list(
        "GATEHOUSE_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"]
    )

# Key for encrypting secrets at rest (upstream credentials, signing keys). Defaults to a key
# derived from SECRET_KEY; set it separately so a SECRET_KEY rotation does not orphan them.
ENCRYPTION_KEY = env.str("GATEHOUSE_ENCRYPTION_KEY", default="") or SECRET_KEY

PUBLIC_URL = env.str("GATEHOUSE_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("GATEHOUSE_CSRF_TRUSTED_ORIGINS", default=[PUBLIC_URL])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "gatehouse",
    "audit",
    "tokens",
    "upstreams",
    "gateway",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "gatehouse.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "gatehouse.urls"
ASGI_APPLICATION = "gatehouse.asgi.application"
# What ``manage.py serve`` runs it under (docs/performance.md says which to choose).
ASGI_SERVER = env.choice("GATEHOUSE_ASGI_SERVER", default="daphne", choices=["daphne", "uvicorn"])

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'gatehouse.sqlite3'}")
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=0)
except ValueError as exc:  # the URL may hold a password: name the variable, not the value
    raise ImproperlyConfigured(
        "DATABASE_URL must be a postgres:// or sqlite:/// URL (see docs/configuration.md)."
    ) from exc
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE lets daphne, the Celery worker and beat share one file without
    # "database is locked" surprises.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests that start daphne or a Celery worker need a file the subprocess can open, and
    # concurrent test runs on one machine must not share it.
    _db["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"gatehouse-test-{os.getpid()}.sqlite3")}
else:
    _db["TEST"] = {"NAME": f"test_gatehouse_{os.getpid()}"}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, broker ----------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {
        "default": {
            # RedisCache with a per-process stand-in while Redis is down (rate limits and throttling
            # keep working, counted per process): see core/cache.py.
            "BACKEND": "core.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "gatehouse",
            # One connection pool per process, not one per request: see core/cache.py.
            "OPTIONS": {"pool_class": "core.cache.SharedConnectionPool"},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = (
    env.str("GATEHOUSE_CELERY_BROKER_URL", default="")
    or env.str("CELERY_BROKER_URL", default="")
    or REDIS_URL
    # The host part means nothing to the filesystem transport; naming one keeps kombu quiet.
    or "filesystem://localhost//"
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport, writing each message atomically (see core/broker.py).
    CELERY_BROKER_TRANSPORT = "core.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        # kombu's default (1 s) is also its back-off while the worker's prefetch is full.
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None

# --- Operations -----------------------------------------------------------------------------
# Prometheus multiprocess files of every process on this host (core/metrics.py). Not read from
# PROMETHEUS_MULTIPROC_DIR: core.metrics sets that one from this, so a child process started
# by another Gatehouse process (tests, scripts) never inherits its parent's directory by accident.
METRICS_DIR = Path(env.str("GATEHOUSE_METRICS_DIR", default=str(DATA_DIR / "metrics"))).resolve()
# `/metrics` wants `Authorization: Bearer <this>` when set; without it, loopback clients only.
METRICS_TOKEN = env.str("GATEHOUSE_METRICS_TOKEN", default="")
# OpenTelemetry traces (core/tracing.py) are on when an OTLP endpoint is given; the SDK reads
# the rest of the standard OTEL_* variables itself.
TRACING_ENABLED = bool(
    env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="").strip()
    or env.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", default="").strip()
)
# Audit events shipped to a SIEM (audit/webhook.py): each event POSTed in order, HMAC-SHA256 signed.
AUDIT_WEBHOOK_URL = env.str("GATEHOUSE_AUDIT_WEBHOOK_URL", default="")
AUDIT_WEBHOOK_SECRET = env.str("GATEHOUSE_AUDIT_WEBHOOK_SECRET", default="")
if AUDIT_WEBHOOK_URL and urlsplit(AUDIT_WEBHOOK_URL).scheme not in ("http", "https"):
    raise ImproperlyConfigured("GATEHOUSE_AUDIT_WEBHOOK_URL must be an http:// or https:// URL.")
if AUDIT_WEBHOOK_URL and not AUDIT_WEBHOOK_SECRET:
    raise ImproperlyConfigured(
        "GATEHOUSE_AUDIT_WEBHOOK_SECRET is required with GATEHOUSE_AUDIT_WEBHOOK_URL: receivers "
        "verify each event's signature with it."
    )
# A delivery run every this many seconds; after a failure, waits double up to the maximum.
AUDIT_WEBHOOK_SECONDS = env.positive_float("GATEHOUSE_AUDIT_WEBHOOK_SECONDS", default=5.0)
AUDIT_WEBHOOK_MAX_BACKOFF_SECONDS = env.positive_float(
    "GATEHOUSE_AUDIT_WEBHOOK_MAX_BACKOFF_SECONDS", default=300.0
)
AUDIT_WEBHOOK_TIMEOUT_SECONDS = env.positive_float("GATEHOUSE_AUDIT_WEBHOOK_TIMEOUT_SECONDS", default=10.0)

# --- stdio servers (upstreams/stdio) ------------------------------------------------------------
# Where the stdio runner (`manage.py stdio_runner`) listens and the gateway dials it; the runner
# binds to this URL's host and port unless told otherwise. (`make run` sets it to the port after
# the web process's, so two `make run`s on different ports do not collide.)
STDIO_RUNNER_URL = env.str("GATEHOUSE_STDIO_RUNNER_URL", default="http://127.0.0.1:8001").rstrip("/")
if urlsplit(STDIO_RUNNER_URL).scheme not in ("http", "https") or not urlsplit(STDIO_RUNNER_URL).hostname:
    raise ImproperlyConfigured("GATEHOUSE_STDIO_RUNNER_URL must be an http:// or https:// URL with a host.")
# The runner answers only requests carrying this key. By default derived from the secret key
# (shared by every instance already), so one box needs nothing set.
STDIO_RUNNER_KEY = env.str("GATEHOUSE_STDIO_RUNNER_KEY", default="") or hmac.new(
    SECRET_KEY.encode(), b"gatehouse stdio runner key", hashlib.sha256
).hexdigest()

CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

SWEEP_SECONDS = env.positive_int("GATEHOUSE_SWEEP_SECONDS", default=60)
# The session sweep ends (and audits) this many sessions per transaction.
SWEEP_BATCH_SIZE = env.positive_int("GATEHOUSE_SWEEP_BATCH_SIZE", default=200)
# /ready answers 503 when no session sweep ran for a few intervals (no worker or no beat);
# off by default: a stopped worker then shows in /ready's body, and web instances keep serving.
READY_REQUIRES_SWEEPS = env.bool("GATEHOUSE_READY_REQUIRES_SWEEPS", default=False)
SESSION_IDLE_SECONDS = env.positive_int("GATEHOUSE_SESSION_IDLE_SECONDS", default=1800)
SESSION_MAX_SECONDS = env.positive_int("GATEHOUSE_SESSION_MAX_SECONDS", default=86400)
AUDIT_RETENTION_DAYS = env.positive_int("GATEHOUSE_AUDIT_RETENTION_DAYS", default=365)
# Gateway audit events are written in batches this often (what a SIGKILL can lose; see audit.services).
AUDIT_BATCH_SECONDS = env.positive_float("GATEHOUSE_AUDIT_BATCH_SECONDS", default=0.5)
# Warn (audit, and email when configured) this long before a token expires.
TOKEN_WARN_BEFORE_SECONDS = env.positive_int("GATEHOUSE_TOKEN_WARN_BEFORE_SECONDS", default=3 * 86400)
# Audit retention runs this often (it deletes in batches and leaves a chain checkpoint).
AUDIT_PRUNE_SECONDS = env.positive_int("GATEHOUSE_AUDIT_PRUNE_SECONDS", default=3600)
# Separate queue names let several deployments, or test runs, share one broker.
CELERY_TASK_DEFAULT_QUEUE = env.str("GATEHOUSE_CELERY_QUEUE", default="celery")
# The schedule lives here, not in a database: every deploy runs the same sweeps. A sweep still
# queued after one interval is dropped (expires): the next one does the same work.
CELERY_BEAT_SCHEDULE = {
    name: {"task": task, "schedule": float(every), "options": {"expires": float(every)}}
    for name, task, every in (
        ("expire-sessions", "gateway.tasks.expire_sessions", SWEEP_SECONDS),
        ("expire-tokens", "tokens.tasks.expire_tokens", SWEEP_SECONDS),
        ("warn-expiring-tokens", "tokens.tasks.warn_expiring_tokens", SWEEP_SECONDS),
        ("prune-audit", "audit.tasks.prune_audit", AUDIT_PRUNE_SECONDS),
        *([("audit-webhook", "audit.tasks.deliver_audit_webhook", AUDIT_WEBHOOK_SECONDS)]
          if AUDIT_WEBHOOK_URL else []),
    )
}

# --- Tokens ---------------------------------------------------------------------------------
TOKEN_ISSUER = env.str("GATEHOUSE_TOKEN_ISSUER", default=PUBLIC_URL)
TOKEN_AUDIENCE = env.str("GATEHOUSE_TOKEN_AUDIENCE", default=f"{PUBLIC_URL}/mcp")
# Fixed here, never read from a token header.
TOKEN_ALGORITHMS = ["EdDSA", "ES256"]
TOKEN_SIGNING_ALGORITHM = env.choice("GATEHOUSE_TOKEN_ALGORITHM", default="EdDSA", choices=TOKEN_ALGORITHMS)
TOKEN_DEFAULT_TTL = timedelta(
    seconds=env.positive_int("GATEHOUSE_TOKEN_DEFAULT_TTL_SECONDS", default=7 * 86400)
)
TOKEN_MAX_TTL = timedelta(seconds=env.positive_int("GATEHOUSE_TOKEN_MAX_TTL_SECONDS", default=90 * 86400))
TOKEN_ALLOW_NEVER_EXPIRES = env.bool("GATEHOUSE_TOKEN_ALLOW_NEVER_EXPIRES", default=False)
TOKEN_LEEWAY_SECONDS = env.int("GATEHOUSE_TOKEN_LEEWAY_SECONDS", default=30)
# Trusted issuers (tokens/issuers/keys.py): a token with a kid not in the cached key set refetches
# the provider's JWKS at most this often per issuer, so made-up kids cannot flood the provider.
ISSUER_KEYS_REFETCH_SECONDS = env.positive_float("GATEHOUSE_ISSUER_KEYS_REFETCH_SECONDS", default=10.0)

# --- Gateway --------------------------------------------------------------------------------
TOKEN_RATE = env.rate("GATEHOUSE_TOKEN_RATE", default="600/m")
IP_RATE = env.rate("GATEHOUSE_IP_RATE", default="1200/m")
MAX_BODY_BYTES = env.positive_int("GATEHOUSE_MAX_BODY_BYTES", default=4 * 1024 * 1024)
UPSTREAM_TIMEOUT_SECONDS = env.positive_float("GATEHOUSE_UPSTREAM_TIMEOUT_SECONDS", default=30.0)
# Bounds on an upstream event stream once its headers are in (gateway/upstream/relay.py ``pump_sse``). Only
# complete SSE blocks count as a sign of life (an event or a keep-alive comment such as the SDK
# servers' 15 s pings), never loose bytes: a trickle that never completes an event is a stall.
# First: the time from the headers of an answer to a POST to its first complete block; as long as
# the TypeScript SDK client's own request timeout (60 s), since a tool call may think before its
# first progress notification. Idle: the longest silence after that, and on GET streams from
# their headers on; as long as the Python SDK client's read timeout (300 s).
STREAM_FIRST_EVENT_SECONDS = env.positive_float("GATEHOUSE_STREAM_FIRST_EVENT_SECONDS", default=60.0)
STREAM_IDLE_SECONDS = env.positive_float("GATEHOUSE_STREAM_IDLE_SECONDS", default=300.0)
# While an event stream waits, a ``: keepalive`` comment goes to the client this often, so proxies
# and load balancers in between do not close a quiet but healthy connection.
STREAM_KEEPALIVE_SECONDS = env.positive_float("GATEHOUSE_STREAM_KEEPALIVE_SECONDS", default=15.0)
# Browser origins allowed to call the gateway (DNS-rebinding protection). Requests without an
# Origin header (CLI clients, supergateway) are not affected.
ALLOWED_ORIGINS = env.list("GATEHOUSE_ALLOWED_ORIGINS", default=[PUBLIC_URL])

# --- Auth, console, API ---------------------------------------------------------------------
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# Console sign-in with OpenID Connect (gatehouse/oidc_login.py), on when GATEHOUSE_OIDC_ISSUER is
# set. The provider's endpoints come from its discovery document, read on first use, not here.
OIDC_ISSUER = env.str("GATEHOUSE_OIDC_ISSUER", default="")
OIDC_RP_CLIENT_ID = env.str("GATEHOUSE_OIDC_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("GATEHOUSE_OIDC_CLIENT_SECRET", default="")
OIDC_RP_SCOPES = env.str("GATEHOUSE_OIDC_SCOPES", default="openid email profile")
OIDC_RP_SIGN_ALGO = env.choice("GATEHOUSE_OIDC_SIGN_ALGO", default="RS256", choices=["RS256", "ES256"])
OIDC_NAME = env.str("GATEHOUSE_OIDC_NAME", default="SSO")
OIDC_USERNAME_CLAIM = env.str("GATEHOUSE_OIDC_USERNAME_CLAIM", default="email")
OIDC_GROUPS_CLAIM = env.str("GATEHOUSE_OIDC_GROUPS_CLAIM", default="groups")
OIDC_ADMIN_GROUPS = env.list("GATEHOUSE_OIDC_ADMIN_GROUPS", default=[])
OIDC_AUDITOR_GROUPS = env.list("GATEHOUSE_OIDC_AUDITOR_GROUPS", default=[])
# Off: no password sign-in anywhere (console and Django admin); only the OIDC button.
LOCAL_LOGIN = env.bool("GATEHOUSE_LOCAL_LOGIN", default=True)
if OIDC_ISSUER:
    if not is_provider_url(OIDC_ISSUER):
        raise ImproperlyConfigured("GATEHOUSE_OIDC_ISSUER must be https (http only to a loopback address).")
    for _name, _value in (("GATEHOUSE_OIDC_CLIENT_ID", OIDC_RP_CLIENT_ID),
                          ("GATEHOUSE_OIDC_CLIENT_SECRET", OIDC_RP_CLIENT_SECRET)):
        if not _value:
            raise ImproperlyConfigured(f"Set {_name}: GATEHOUSE_OIDC_ISSUER turns OIDC sign-in on.")
    INSTALLED_APPS.append("mozilla_django_oidc")
elif not LOCAL_LOGIN:
    raise ImproperlyConfigured(
        "GATEHOUSE_LOCAL_LOGIN=false needs GATEHOUSE_OIDC_ISSUER: nobody could sign in."
    )
AUTHENTICATION_BACKENDS = ["gatehouse.oidc_login.LocalPasswordBackend"] + (
    ["gatehouse.oidc_login.OidcBackend"] if OIDC_ISSUER else []
)
OIDC_AUTHENTICATE_CLASS = "gatehouse.oidc_login.OidcStartView"
OIDC_CALLBACK_CLASS = "gatehouse.oidc_login.OidcCallbackView"
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
OIDC_TIMEOUT = 10

# Gatehouse as the OAuth 2.1 authorization server for MCP clients (tokens/oauth/).
# Access tokens are ordinary gth_ tokens; this is their lifetime unless a grant's is shorter.
OAUTH_ACCESS_TTL = timedelta(seconds=env.positive_int("GATEHOUSE_OAUTH_ACCESS_TTL", default=3600))
# Dynamic Client Registration (RFC 7591): open unless "off"; rate limited per client address.
OAUTH_REGISTRATION = env.choice("GATEHOUSE_OAUTH_REGISTRATION", default="on", choices=["on", "off"])
OAUTH_REGISTRATION_RATE = env.rate("GATEHOUSE_OAUTH_REGISTRATION_RATE", default="20/h")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_RATES": {
        "apikey": env.rate("GATEHOUSE_API_RATE", default="120/m"),
        # Per client address at /api/v1/token-exchange/, which needs no key.
        "token_exchange": env.rate("GATEHOUSE_TOKEN_EXCHANGE_RATE", default="60/m"),
        # Per client address at /oauth/register and /oauth/token, which need no key.
        "oauth_register": OAUTH_REGISTRATION_RATE,
        "oauth_token": env.rate("GATEHOUSE_OAUTH_TOKEN_RATE", default="120/m"),
    },
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    # Per-address limits key on REMOTE_ADDR, never on a client's X-Forwarded-For (which anyone can
    # send); behind a load balancer `serve --proxy-headers` sets REMOTE_ADDR from it.
    "NUM_PROXIES": 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Gatehouse API",
    "DESCRIPTION": "Mint, rotate and revoke MCP gateway tokens; read servers, sessions, audit.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Swagger UI and Redoc assets served from this app (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "TokenStatusEnum": "tokens.models.Token.Status",
        "SessionStatusEnum": "gateway.models.SessionBinding.Status",
    },
}

# --- Security profile -----------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("GATEHOUSE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$"]
    SECURE_HSTS_SECONDS = env.int("GATEHOUSE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("GATEHOUSE_HSTS_PRELOAD", default=False)
    if env.bool("GATEHOUSE_BEHIND_TLS_PROXY", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- Static, i18n ---------------------------------------------------------------------------
STATIC_URL = "/static/"
# Collected static files are a build product of the code, not data: they live next to it.
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Email (optional: expiring-token warnings) ----------------------------------------------
EMAIL_URL = env.str("GATEHOUSE_EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(environ.Env.email_url_config(EMAIL_URL))
DEFAULT_FROM_EMAIL = env.str("GATEHOUSE_EMAIL_FROM", default="gatehouse@localhost")

# --- Logging: one JSON object per line on stdout, secrets masked ----------------------------
LOG_LEVEL = env.choice(
    "GATEHOUSE_LOG_LEVEL", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
)
LOGGING_CONFIG = "core.logging.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "mask_secrets": {"()": "core.logging.MaskSecretsFilter"},
        # channels-redis logs a traceback a second while Redis is down: logged once instead.
        "redis_outage": {"()": "core.layer.PubSubOutageFilter"},
    },
    "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["mask_secrets"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        "gatehouse": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        "channels_redis.pubsub": {"filters": ["redis_outage"]},
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
