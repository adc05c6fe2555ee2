from orders_svc.settings import *  # noqa: F403

EVENT_HANDLERS = "tests.support.probe.orders.registry"
