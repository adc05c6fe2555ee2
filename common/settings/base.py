"""Settings every service shares; each `<svc>_svc/settings.py` star-imports this, sets what every
service derives from its name with `service_settings`, and adds its own.

Everything that differs between machines comes from the environment (see README, "Configuration").
`APP_ENV` picks the profile: `local` (default, for `make run`), `test`, or `production` (no insecure
defaults: a missing secret stops the process).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from common.cli import SERVICES
from common.observability.logging import config as log_config
from common.settings.env import (
    amqp_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
)
from common.settings.guards import refuse_placeholder, scheme, strong_secret_key, url_credentials

# Lets Django's generic classes be subscripted at run time (ModelAdmin[Order]), as the stubs type them.
django_stubs_ext.monkeypatch()

PROJECT_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(env_str("SUITE_VAR_DIR", str(PROJECT_DIR / "var")))

APP_ENV = env_choice("APP_ENV", "local", ("local", "test", "production"))
PRODUCTION = APP_ENV == "production"

DEBUG = env_bool("DJANGO_DEBUG", APP_ENV == "local")
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off when APP_ENV=production: debug pages print settings")
if PRODUCTION:
    SECRET_KEY = strong_secret_key("DJANGO_SECRET_KEY", env_secret("DJANGO_SECRET_KEY") or "")
else:
    SECRET_KEY = env_secret("DJANGO_SECRET_KEY", required=False) or "insecure-local-only-key"
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set when APP_ENV=production")

INSTALLED_APPS = [
    "common.throttling.admin_site.ThrottledAdminConfig",  # django.contrib.admin, its login throttled
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "common.bus",
    "common.throttling",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "common.observability.middleware.CorrelationIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve admin assets straight from the apps in local/test runs; production runs collectstatic.
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# The bearer token of every API's /metrics (it is on the public port); production requires one.
METRICS_TOKEN = env_secret("METRICS_TOKEN", required=False)
if PRODUCTION and METRICS_TOKEN:
    refuse_placeholder("METRICS_TOKEN", METRICS_TOKEN)
# Admin logins per address and per username (every attempt counts).
ADMIN_LOGIN_THROTTLE = env_str("THROTTLE_ADMIN_LOGIN", "10/min")
DEFAULT_EXCEPTION_REPORTER_FILTER = "common.reporting.ReporterFilter"  # no URL's password on error pages
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Reverse proxies in front of the API (an Ingress, a load balancer): only then are X-Forwarded-For
# (the throttles' client address) and X-Forwarded-Proto (HTTPS) believed, and only their last hops.
# Without a proxy any client could set them.
TRUSTED_PROXIES = env_int("DJANGO_TRUSTED_PROXIES", 0, minimum=0, maximum=10)
if TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if PRODUCTION:
    # Behind TLS (the production setup) cookies are secure; a plain-HTTP trial (compose on one
    # machine) turns these off explicitly.
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Broker -------------------------------------------------------------------------------------
AMQP_URL = amqp_url()
if not AMQP_URL.startswith(("amqp://", "amqps://")):
    raise ImproperlyConfigured(f"AMQP_URL must start with amqp:// or amqps://, got {scheme(AMQP_URL)}")

# Who may produce what: the broker user each service publishes as. RabbitMQ checks that a message's
# user_id is the user that published it, and a consumer accepts an event only with the user_id of
# its contract's producer (or its own: its retries and replays). BUS_<SVC>_BROKER_USER names it; by
# default each service's user is named after it in production (deploy/ and compose make them so),
# and elsewhere every service shares AMQP_URL's user (one local broker user).
BUS_OWN_BROKER_USER = unquote(urlsplit(AMQP_URL).username or "")  # the user this process connects as
BUS_BROKER_USERS = {
    service: env_str(f"BUS_{service.upper()}_BROKER_USER", service if PRODUCTION else BUS_OWN_BROKER_USER)
    for service in SERVICES
}

# --- Event bus ----------------------------------------------------------------------------------
# The speed-only uses of Celery's, kombu's and py-amqp's private internals (common/bus/internals/):
# 0 turns them all off (consumer batching, coalesced and read-free publishing, Django connection
# reuse in the worker), leaving every guarantee as it is, for an upgrade or a suspicion.
BUS_FAST_PATHS = env_bool("BUS_FAST_PATHS", True)
# Handlers wait on the database most of the time: more processes than cores keep both busy.
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 4, minimum=1, maximum=64)
WORKER_PREFETCH_MULTIPLIER = env_int("WORKER_PREFETCH_MULTIPLIER", 4, minimum=1, maximum=512)
# Times a pool process may die handling one event before the worker parks it (kind "crashed"),
# counted by the worker itself: returns of unstarted messages (shutdowns, reconnects) do not count.
# The broker's own delivery limit is only a high backstop (BUS_BROKER_DELIVERY_LIMIT, a policy:
# common/ops/rabbitmq_policies.py).
BUS_DELIVERY_LIMIT = env_int("BUS_DELIVERY_LIMIT", 5, minimum=1, maximum=1000)
# The relay: rows per batch (one transaction, one burst of pipelined confirms), how long it sleeps
# between claims when LISTEN/NOTIFY is not there to wake it (SQLite), how long it waits for
# confirms before it treats the broker as gone, and how long published rows are kept.
BUS_RELAY_BATCH_SIZE = env_int("BUS_RELAY_BATCH_SIZE", 1000, minimum=1, maximum=10_000)
BUS_RELAY_POLL_SECONDS = env_float("BUS_RELAY_POLL_SECONDS", 0.5, minimum=0.01)
BUS_RELAY_CONFIRM_TIMEOUT = env_float("BUS_RELAY_CONFIRM_TIMEOUT", 15.0, minimum=0.1)
BUS_OUTBOX_RETENTION_HOURS = env_int("BUS_OUTBOX_RETENTION_HOURS", 168, minimum=1)
# Dead letters hold whole messages (addresses, names): they expire, parked this many days ago.
BUS_DEAD_LETTER_RETENTION_DAYS = env_int("BUS_DEAD_LETTER_RETENTION_DAYS", 30, minimum=1)
# A relay's claim on a batch (or a committing process's on the rows it publishes): others leave it
# alone this long, on the database's clock, then assume its holder died.
BUS_RELAY_LEASE_SECONDS = env_float("BUS_RELAY_LEASE_SECONDS", 60.0, minimum=1.0)
# Publish each committed outbox row from the committing process at once (one hop fewer than the
# relay's: lower latency), the relays taking what it could not publish (docs/decisions.md).
BUS_DISPATCH_ON_COMMIT = env_bool("BUS_DISPATCH_ON_COMMIT", True)
# The longest a holder may still publish its rows: two attempts (the second on a fresh connection),
# each a connection (5 s at most) and a wait for confirms.
_longest_publication = 2 * (5.0 + BUS_RELAY_CONFIRM_TIMEOUT)
if _longest_publication >= BUS_RELAY_LEASE_SECONDS:
    raise ImproperlyConfigured(
        f"BUS_RELAY_LEASE_SECONDS must exceed {_longest_publication:g} (twice 5 s plus "
        f"BUS_RELAY_CONFIRM_TIMEOUT): rows must not be taken over while their holder may still publish "
        f"them, got {BUS_RELAY_LEASE_SECONDS:g}"
    )
# The service's own housekeeping its relay runs every second (import paths of functions returning
# how much they did): e.g. notifications mails its committed notifications.
BUS_HOUSEKEEPING: list[str] = []
# Consumers: attempts of a handler that fails transiently (retried on the broker with exponential
# backoff from BASE seconds, +up to 50% jitter, capped at MAX), then parked in the dead-letter queue.
BUS_RETRY_MAX_ATTEMPTS = env_int("BUS_RETRY_MAX_ATTEMPTS", 6, minimum=1, maximum=50)
BUS_RETRY_BASE_SECONDS = env_float("BUS_RETRY_BASE_SECONDS", 2.0, minimum=1.0)
BUS_RETRY_MAX_DELAY_SECONDS = env_float("BUS_RETRY_MAX_DELAY_SECONDS", 300.0, minimum=1.0)
# Handled event ids are kept this long to recognise duplicates: longer than the retry window plus the
# time an operator may take to replay a dead letter.
BUS_INBOX_RETENTION_HOURS = env_int("BUS_INBOX_RETENTION_HOURS", 720, minimum=1)
# Consumers: at most this many events (read back to back, or waiting while every pool process is
# busy) handed to a pool process together and handled in one transaction (1 turns batching off).
BUS_CONSUMER_BATCH_SIZE = env_int("BUS_CONSUMER_BATCH_SIZE", 50, minimum=1, maximum=1000)
_retry_window_seconds = sum(
    min(BUS_RETRY_BASE_SECONDS * 2 ** (n - 1), BUS_RETRY_MAX_DELAY_SECONDS) * 1.5
    for n in range(1, BUS_RETRY_MAX_ATTEMPTS)
)
if 2 * _retry_window_seconds + 86400 > BUS_INBOX_RETENTION_HOURS * 3600:
    raise ImproperlyConfigured(
        f"BUS_INBOX_RETENTION_HOURS={BUS_INBOX_RETENTION_HOURS} is too short: it must cover the retry "
        f"window ({_retry_window_seconds / 3600:.1f}h) twice plus a day for replays"
    )


# --- REST ---------------------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["common.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "common.api.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "common.api.exception_handler",
    # the client's address is REMOTE_ADDR, or the hop the last trusted proxy saw; never a value the
    # client wrote itself (DRF's default, None, believes all of X-Forwarded-For)
    "NUM_PROXIES": TRUSTED_PROXIES,
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")


def rest_framework(*, authentication: str) -> dict[str, Any]:
    """REST settings of one service, with how it authenticates bearer tokens."""
    return {**REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": [authentication]}


# --- Tokens: issued by users (RS256, private key), verified elsewhere with the public key alone ----
JWT_DIR = VAR_DIR / "jwt"


def jwt_settings(*, issuer: bool) -> dict[str, Any]:
    """A missing key is not an error here: only the API needs keys, and it refuses to start without
    them (`common.auth.keys.require_token_keys`); workers, relays and the contract tools need none."""
    public_key = env_secret("JWT_PUBLIC_KEY", file_default=JWT_DIR / "public.pem", required=False)
    private_key = (
        env_secret("JWT_PRIVATE_KEY", file_default=JWT_DIR / "private.pem", required=False)
        if issuer
        else None
    )
    return {
        "ALGORITHM": "RS256",
        "SIGNING_KEY": private_key,
        "VERIFYING_KEY": public_key,
        "ISSUER": "users",
        "AUDIENCE": "suite",
        "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15, minimum=1)),
        "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7, minimum=1)),
        "USER_ID_FIELD": "id",
        "USER_ID_CLAIM": "user_id",
        "AUTH_HEADER_TYPES": ("Bearer",),
        "UPDATE_LAST_LOGIN": False,
    }


# --- Databases ----------------------------------------------------------------------------------
SQLITE_BUSY_TIMEOUT = 60  # seconds a write waits for SQLite's one write lock before it fails


def databases(service: str) -> dict[str, dict[str, Any]]:
    """`<SERVICE>_DATABASE_URL` when set (PostgreSQL), else an SQLite file under var/ (never in
    production, where a database is chosen explicitly)."""
    var = f"{service.upper()}_DATABASE_URL"
    url = env_str(var, None if PRODUCTION else "")
    if not url:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        return {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": VAR_DIR / f"{service}.sqlite3",
                # WAL lets the API, worker and relay read while one of them writes.
                "OPTIONS": {
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                    "transaction_mode": "IMMEDIATE",
                    "timeout": SQLITE_BUSY_TIMEOUT,
                },
            }
        }
    if not url.startswith(("postgres://", "postgresql://", "sqlite://")):
        raise ImproperlyConfigured(f"{var} must be a postgresql:// or sqlite:// URL, got {scheme(url)}")
    if PRODUCTION:
        url_credentials(var, url)
    try:
        # persistent connections are checked before a request reuses one: after the database
        # restarts, a request gets a new connection rather than a 500 on the dead one
        config = dj_database_url.parse(
            url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0), conn_health_checks=True
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"{var} is not a valid database URL: {exc}") from None
    if config["ENGINE"].endswith("sqlite3"):
        config.setdefault("OPTIONS", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT)
    return {"default": dict(config)}


def caches(service: str) -> dict[str, dict[str, Any]]:
    """One cache for every process of a service (throttle counts must add up across the API's
    workers and replicas): Redis when CACHE_URL names one, else a table in the service's database."""
    url = env_str("CACHE_URL", "")
    if not url:
        return {
            "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "suite_cache"}
        }
    if not url.startswith(("redis://", "rediss://")):
        raise ImproperlyConfigured(f"CACHE_URL must be a redis:// or rediss:// URL, got {scheme(url)}")
    if PRODUCTION:
        refuse_placeholder("CACHE_URL", url)
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": service,
        }
    }


def task_time_limits(databases: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """Seconds a handler (or a batch) may run: soft (interrupted, rolled back, retried) and hard
    (its process killed). On SQLite a running batch holds the database's one write lock, so both
    stay below the busy timeout: the API's writes wait for the lock rather than fail."""
    sqlite = any(db["ENGINE"].endswith("sqlite3") for db in databases.values())
    soft = env_int("BUS_TASK_SOFT_TIME_LIMIT", SQLITE_BUSY_TIMEOUT // 2 if sqlite else 60, minimum=1)
    hard = env_int("BUS_TASK_TIME_LIMIT", SQLITE_BUSY_TIMEOUT * 3 // 4 if sqlite else 90, minimum=2)
    if hard <= soft:
        raise ImproperlyConfigured(
            f"BUS_TASK_TIME_LIMIT ({hard}) must be greater than BUS_TASK_SOFT_TIME_LIMIT ({soft})"
        )
    if sqlite and hard >= SQLITE_BUSY_TIMEOUT:
        raise ImproperlyConfigured(
            f"BUS_TASK_TIME_LIMIT ({hard}) must be below SQLite's busy timeout ({SQLITE_BUSY_TIMEOUT} s):"
            " a running batch holds SQLite's only write lock, and the API's writes give up after that"
        )
    return soft, hard


# --- OpenAPI ------------------------------------------------------------------------------------
def spectacular(service: str, description: str) -> dict[str, Any]:
    return {
        "TITLE": f"{service} service API",
        "DESCRIPTION": description,
        "VERSION": "1.0.0",
        "SERVE_INCLUDE_SCHEMA": False,
        "COMPONENT_SPLIT_REQUEST": True,
        # Swagger UI from this process's static files, not a CDN (common/docs_urls.py)
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
    }


# --- Email --------------------------------------------------------------------------------------
# Outside production mails go to the console; in production to an SMTP server, never to the logs
# (the console backend prints every address and body there).
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
if PRODUCTION and EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend":
    raise ImproperlyConfigured(
        "EMAIL_BACKEND must not be the console backend when APP_ENV=production: it prints every mail "
        "(addresses and bodies) to the logs"
    )
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", required=False) or ""
if PRODUCTION:
    refuse_placeholder("EMAIL_HOST_PASSWORD", EMAIL_HOST_PASSWORD)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Suite <no-reply@example.com>")

# --- Logging ------------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOG_FORMAT = env_choice("LOG_FORMAT", "json" if PRODUCTION else "plain", ("json", "plain"))
# Per-logger levels: LOG_LEVELS="common.bus.outbox.relay=DEBUG,celery=WARNING"
LOG_LEVELS = dict(item.split("=", 1) for item in env_list("LOG_LEVELS", []) if "=" in item)


# Health and metrics endpoints of workers (91x1) and relays (911x), 0 = off. Defaults differ per
# service so that `make run` can run them all on one machine.
_PORT_OFFSETS = {"users": 1, "orders": 2, "notifications": 3}


def service_port(name: str, service: str, base: int) -> int:
    """`name` from the environment, else `base` + 1/2/3 for users/orders/notifications."""
    return env_int(name, base + _PORT_OFFSETS.get(service, 0), minimum=0, maximum=65535)


def logging_config(service: str) -> dict[str, Any]:
    return log_config(service, fmt=LOG_FORMAT, level=LOG_LEVEL, levels=LOG_LEVELS)


# --- A service's own settings, built from its name --------------------------------------------
# How orders and notifications authenticate: the users service's public key alone, no user table.
_STATELESS_AUTHENTICATION = "rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication"


def service_settings(
    service: str,
    *,
    app: str,
    description: str,
    extra_apps: Sequence[str] = (),
    authentication: str = _STATELESS_AUTHENTICATION,
    issuer: bool = False,
) -> dict[str, Any]:
    """What every service sets the same way, from its name and its Django app; its settings module
    adds what is its own: `globals().update(service_settings(...))`. `issuer` is for the service that
    signs tokens (users) and so needs the private key too."""
    service_databases = databases(service)
    soft_limit, hard_limit = task_time_limits(service_databases)
    return {
        "SERVICE_NAME": service,
        "ROOT_URLCONF": f"{service}_svc.urls",
        "WSGI_APPLICATION": f"{service}_svc.wsgi.application",
        "INSTALLED_APPS": [*INSTALLED_APPS, *extra_apps, app],
        "DATABASES": service_databases,
        "CACHES": caches(service),
        "BUS_TASK_SOFT_TIME_LIMIT": soft_limit,
        "BUS_TASK_TIME_LIMIT": hard_limit,
        "LOGGING": logging_config(service),
        "WORKER_HTTP_PORT": service_port("WORKER_HTTP_PORT", service, 9100),
        "RELAY_HTTP_PORT": service_port("RELAY_HTTP_PORT", service, 9110),
        "SIMPLE_JWT": jwt_settings(issuer=issuer),
        "REST_FRAMEWORK": rest_framework(authentication=authentication),
        "SPECTACULAR_SETTINGS": spectacular(service, description),
        "EVENT_HANDLERS": f"{app}.handlers.registry",
    }
