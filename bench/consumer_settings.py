"""The notifications worker, with the benchmark's handler."""

from notifications_svc.settings import *  # noqa: F403

EVENT_HANDLERS = "bench.handlers.registry"
