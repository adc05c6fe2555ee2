"""`manage.py <svc> bus_subscriptions`: what this service consumes, as JSON (for the catalogue)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string

from common.bus.amqp import topology
from common.bus.consume.handlers import HandlerRegistry


class Command(BaseCommand):
    help = "Print the event types and versions this service handles, and its queue, as JSON."

    def handle(self, *args: Any, **options: Any) -> None:
        registry: HandlerRegistry = import_string(settings.EVENT_HANDLERS)
        self.stdout.write(
            json.dumps(
                {
                    "service": settings.SERVICE_NAME,
                    "queue": topology.queue_name(settings.SERVICE_NAME),
                    "handles": [
                        {"type": s.contract.event_type, "version": s.contract.version}
                        for s in registry.subscriptions()
                    ],
                }
            )
        )
