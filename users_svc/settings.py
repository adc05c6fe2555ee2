"""Settings of the users service (shared defaults in common.settings.base)."""

from common.settings.base import *  # noqa: F403
from common.settings.base import INSTALLED_APPS as SHARED_APPS
from common.settings.base import (
    databases,
    jwt_settings,
    logging_config,
    rest_framework,
    service_port,
    spectacular,
    task_time_limits,
)
from common.settings.env import env_str

SERVICE_NAME = "users"
ROOT_URLCONF = "users_svc.urls"
WSGI_APPLICATION = "users_svc.wsgi.application"
INSTALLED_APPS = [
    *SHARED_APPS,
    "rest_framework_simplejwt",
    # Refresh tokens are recorded, so a password change or a deletion can revoke them.
    "rest_framework_simplejwt.token_blacklist",
    "users_svc.accounts",
]
AUTH_USER_MODEL = "accounts.User"
DATABASES = databases(SERVICE_NAME)
BUS_TASK_SOFT_TIME_LIMIT, BUS_TASK_TIME_LIMIT = task_time_limits(DATABASES)
LOGGING = logging_config(SERVICE_NAME)
WORKER_HTTP_PORT = service_port("WORKER_HTTP_PORT", SERVICE_NAME, 9100)
RELAY_HTTP_PORT = service_port("RELAY_HTTP_PORT", SERVICE_NAME, 9110)

if APP_ENV == "test":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Users verifies its own tokens against its database (a deactivated user is refused at once).
SIMPLE_JWT = {**jwt_settings(issuer=True), "ROTATE_REFRESH_TOKENS": True, "BLACKLIST_AFTER_ROTATION": True}
REST_FRAMEWORK = rest_framework(authentication="rest_framework_simplejwt.authentication.JWTAuthentication")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "login": env_str("THROTTLE_LOGIN", "10/min"),
    "signup": env_str("THROTTLE_SIGNUP", "20/min"),
    "password": env_str("THROTTLE_PASSWORD", "10/min"),
}
SPECTACULAR_SETTINGS = spectacular(SERVICE_NAME, "Sign-up, tokens (RS256 JWT) and the caller's account.")

EVENT_HANDLERS = "users_svc.accounts.handlers.registry"
