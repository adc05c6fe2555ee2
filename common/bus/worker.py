"""The Celery app of a consuming service, generated from its handler registry.

`<svc>_svc/celery.py` is one line: `app = create_worker_app("<svc>")`. For each event type the service
handles, a task of that name adapts the message to `consumer.parse` + `consumer.dispatch`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import django
from celery import Celery, Task, bootsteps
from celery.exceptions import Reject
from django.utils.module_loading import import_string

from common.bus import topology
from common.bus.consumer import InvalidMessage, dispatch, parse
from common.bus.handlers import HandlerRegistry

log = logging.getLogger(__name__)


def create_worker_app(service: str) -> Celery:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{service}_svc.settings")
    django.setup()  # handlers are plain functions over the ORM: models must be loaded first
    from django.conf import settings

    registry: HandlerRegistry = import_string(settings.EVENT_HANDLERS)
    app = Celery(f"{service}_svc", set_as_current=True)
    queue = topology.service_queue(
        service, registry.event_types(), delivery_limit=settings.BUS_DELIVERY_LIMIT
    )
    app.conf.update(
        broker_url=settings.AMQP_URL,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"confirm_publish": True},
        accept_content=["json"],
        task_serializer="json",
        result_accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure=False,
        task_queues=[queue],
        task_default_queue=queue.name,
        task_default_exchange=topology.EVENTS_EXCHANGE.name,
        task_default_exchange_type="topic",
        task_default_routing_key=topology.retry_routing_key(service),
        task_create_missing_queues=False,
        worker_concurrency=settings.WORKER_CONCURRENCY,
        worker_prefetch_multiplier=settings.WORKER_PREFETCH_MULTIPLIER,
        worker_send_task_events=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts_level="INFO",
        enable_utc=True,
        timezone="UTC",
    )

    class DeclareTopology(bootsteps.StartStopStep):
        """Declare the DLX and DLQ too (a worker started with -Q declares only its work queue)."""

        requires = {"celery.worker.consumer.connection:Connection"}

        def start(self, parent: Any) -> None:
            topology.declare(
                parent.connection,
                service,
                registry.event_types(),
                delivery_limit=settings.BUS_DELIVERY_LIMIT,
            )

    app.steps["consumer"].add(DeclareTopology)
    for event_type in registry.event_types():
        _register_task(app, registry, event_type)
    return app


def _register_task(app: Celery, registry: HandlerRegistry, event_type: str) -> None:
    def consume(self: Task, *args: Any, **kwargs: Any) -> None:
        try:
            envelope, subscription, event = parse(registry, args, kwargs, task_name=event_type)
        except InvalidMessage as exc:
            log.error("rejecting %s %s: %s", event_type, self.request.id, exc)
            raise Reject(str(exc), requeue=False) from None
        dispatch(envelope, subscription, event)

    app.task(name=event_type, bind=True, acks_late=True)(consume)
