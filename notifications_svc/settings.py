"""Settings of the notifications service (shared defaults in common.settings.base)."""

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

SERVICE_NAME = "notifications"
ROOT_URLCONF = "notifications_svc.urls"
WSGI_APPLICATION = "notifications_svc.wsgi.application"
INSTALLED_APPS = [*SHARED_APPS, "notifications_svc.notifications"]
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
SPECTACULAR_SETTINGS = spectacular(SERVICE_NAME, "The caller's notifications.")

EVENT_HANDLERS = "notifications_svc.notifications.handlers.registry"
# Mail is sent after the handlers' commits, by the relay's housekeeping (see services.deliver).
BUS_HOUSEKEEPING = ["notifications_svc.notifications.services.deliver_pending"]
