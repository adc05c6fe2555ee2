"""Settings of the orders service (shared defaults in common.settings.base)."""

import re

from django.core.exceptions import ImproperlyConfigured

from common.settings.base import *  # noqa: F403
from common.settings.base import service_settings
from common.settings.env import env_str

globals().update(
    service_settings("orders", app="orders_svc.orders", description="Place and read the caller's orders.")
)

# Orders are priced in one currency per deployment (ISO 4217).
ORDER_CURRENCY = env_str("ORDER_CURRENCY", "EUR")
if not re.fullmatch(r"[A-Z]{3}", ORDER_CURRENCY):
    raise ImproperlyConfigured(f"ORDER_CURRENCY must be an ISO 4217 code like EUR, got {ORDER_CURRENCY!r}")

REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    # per caller: each order placed sends mail
    "DEFAULT_THROTTLE_RATES": {"orders": env_str("THROTTLE_ORDERS", "60/min")},
}
