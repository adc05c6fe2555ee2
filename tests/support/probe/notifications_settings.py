from notifications_svc.settings import *  # noqa: F403

EVENT_HANDLERS = "tests.support.probe.notifications.registry"
