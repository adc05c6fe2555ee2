"""Settings of the orders service (shared defaults in common.settings.base)."""

import re

from django.core.exceptions import ImproperlyConfigured

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

SERVICE_NAME = "orders"
ROOT_URLCONF = "orders_svc.urls"
WSGI_APPLICATION = "orders_svc.wsgi.application"
INSTALLED_APPS = [*SHARED_APPS, "orders_svc.orders"]
DATABASES = databases(SERVICE_NAME)
BUS_TASK_SOFT_TIME_LIMIT, BUS_TASK_TIME_LIMIT = task_time_limits(DATABASES)
LOGGING = logging_config(SERVICE_NAME)
WORKER_HTTP_PORT = service_port("WORKER_HTTP_PORT", SERVICE_NAME, 9100)
RELAY_HTTP_PORT = service_port("RELAY_HTTP_PORT", SERVICE_NAME, 9110)

# Tokens are verified with the users service's public key alone: no call to users, no user table.
SIMPLE_JWT = jwt_settings(issuer=False)
REST_FRAMEWORK = rest_framework(
    authentication="rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication"
)
SPECTACULAR_SETTINGS = spectacular(SERVICE_NAME, "Place and read the caller's orders.")

EVENT_HANDLERS = "orders_svc.orders.handlers.registry"

# Orders are priced in one currency per deployment (ISO 4217).
ORDER_CURRENCY = env_str("ORDER_CURRENCY", "EUR")
if not re.fullmatch(r"[A-Z]{3}", ORDER_CURRENCY):
    raise ImproperlyConfigured(f"ORDER_CURRENCY must be an ISO 4217 code like EUR, got {ORDER_CURRENCY!r}")
