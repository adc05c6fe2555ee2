"""Settings for mypy's Django plugin only: every service's apps at once, so the plugin knows every
model. Never used to run anything (the services stay separate projects)."""

from common.settings.base import *  # noqa: F403
from common.settings.base import INSTALLED_APPS as SHARED_APPS

SERVICE_NAME = "typecheck"
INSTALLED_APPS = [
    *SHARED_APPS,
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "users_svc.accounts",
    "orders_svc.orders",
    "notifications_svc.notifications",
]
AUTH_USER_MODEL = "accounts.User"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ROOT_URLCONF = "users_svc.urls"

# What the services' own settings add (each service sets its own values).
EVENT_HANDLERS = "orders_svc.orders.handlers.registry"
ORDER_CURRENCY = "EUR"
SIMPLE_JWT: dict[str, object] = {}
WORKER_HTTP_PORT = 9102
RELAY_HTTP_PORT = 9112
BUS_TASK_SOFT_TIME_LIMIT = 60
BUS_TASK_TIME_LIMIT = 90
