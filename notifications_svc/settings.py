"""Settings of the notifications service (shared defaults in common.settings.base)."""

from common.settings.base import *  # noqa: F403
from common.settings.base import service_settings

globals().update(
    service_settings(
        "notifications", app="notifications_svc.notifications", description="The caller's notifications."
    )
)

# Mail is sent after the handlers' commits, by the relay's housekeeping (see services.deliver).
BUS_HOUSEKEEPING = ["notifications_svc.notifications.services.deliver_pending"]
