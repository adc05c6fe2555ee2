"""Settings of the orders service (shared defaults in common.settings.base)."""

from common.settings.base import *  # noqa: F403
from common.settings.base import INSTALLED_APPS as SHARED_APPS
from common.settings.base import databases, jwt_settings, rest_framework, spectacular

SERVICE_NAME = "orders"
ROOT_URLCONF = "orders_svc.urls"
WSGI_APPLICATION = "orders_svc.wsgi.application"
INSTALLED_APPS = [*SHARED_APPS, "orders_svc.orders"]
DATABASES = databases(SERVICE_NAME)

# Tokens are verified with the users service's public key alone: no call to users, no user table.
SIMPLE_JWT = jwt_settings(issuer=False)
REST_FRAMEWORK = rest_framework(
    authentication="rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication"
)
SPECTACULAR_SETTINGS = spectacular(SERVICE_NAME, "Place and read the caller's orders.")

EVENT_HANDLERS = "orders_svc.orders.handlers.registry"
