"""The Celery app of a consuming service, generated from its handler registry: one task per event
type it handles. `<svc>_svc/celery.py` is one line: `app = create_worker_app("<svc>")`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import django
from celery import Celery, bootsteps, signals
from django import db
from django.utils.module_loading import import_string

from common.bus.amqp import connection, topology
from common.bus.consume.handlers import HandlerRegistry
from common.bus.internals import celery, fast_paths, prometheus
from common.observability.logging import set_role

log = logging.getLogger("common.bus.consume.worker")


def create_worker_app(service: str) -> Celery:
    _metrics_directory(service)  # before anything imports prometheus_client
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{service}_svc.settings")
    django.setup()  # handlers are plain functions over the ORM: models must be loaded first
    from django.conf import settings

    set_role("worker")
    registry: HandlerRegistry = import_string(settings.EVENT_HANDLERS)
    app = Celery(f"{service}_svc", set_as_current=True)
    queue = topology.service_queue(service, registry.event_types())
    batching = fast_paths() and settings.BUS_CONSUMER_BATCH_SIZE > 1
    app.conf.update(
        bus_service=service,
        bus_batch_size=settings.BUS_CONSUMER_BATCH_SIZE,
        bus_delivery_limit=settings.BUS_DELIVERY_LIMIT,
        broker_url=settings.AMQP_URL,
        broker_connection_retry_on_startup=True,
        # a silent link is found by the consumer's heartbeats; any blocking wait on the others ends
        # at the read timeout instead of never
        broker_heartbeat=connection.HEARTBEAT,
        broker_transport_options=connection.bounded(),
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
        task_soft_time_limit=settings.BUS_TASK_SOFT_TIME_LIMIT,
        task_time_limit=settings.BUS_TASK_TIME_LIMIT,
        worker_consumer="common.bus.consume.consumer:EventConsumer",
        worker_pool="common.bus.internals.celery:TaskPool",  # prefork, with an upstream crash fixed
        worker_concurrency=settings.WORKER_CONCURRENCY,
        worker_prefetch_multiplier=settings.WORKER_PREFETCH_MULTIPLIER,
        # Flower turns task events on while it runs (its enable_events): no event traffic otherwise
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts_level="INFO",
        enable_utc=True,
        timezone="UTC",
    )

    class DeclareTopology(bootsteps.StartStopStep):
        """Declare the DLX and DLQ too (`-Q` declares only the work queue); started and stopped with
        the consumer's connection, which is what readiness reports."""

        requires = ("celery.worker.consumer.connection:Connection",)

        def start(self, parent: Any) -> None:
            # a queue of an older declaration stops the worker here, saying how to migrate it
            topology.declare(parent.connection, service, registry.event_types())
            _consumer["connected"] = True

        def stop(self, parent: Any) -> None:
            _consumer["connected"] = False

        shutdown = stop

    app.steps["consumer"].add(DeclareTopology)
    if fast_paths():
        celery.reuse_db_connections(app)
    signals.task_prerun.connect(_close_old_connections, weak=False)
    signals.task_postrun.connect(_close_old_connections, weak=False)
    signals.worker_process_shutdown.connect(_publish_queued_dispatches, weak=False)
    from common.bus.consume.tasks import register_event_task  # imports models: after django.setup()

    for event_type in registry.event_types():
        register_event_task(app, registry, event_type, batching=batching)
    _serve_health_and_metrics(settings.WORKER_HTTP_PORT)
    return app


def _close_old_connections(**_: Any) -> None:
    db.close_old_connections()


def _publish_queued_dispatches(**_: Any) -> None:
    """A pool process ends with `os._exit` (its task quota, a scale-down, a shutdown): `atexit`
    never runs there, so what its dispatcher has queued is published now, not a lease later."""
    from common.bus.outbox import on_commit

    on_commit.stop()


def _metrics_directory(service: str) -> None:
    """Pool processes count into files the main process exposes; emptied so counts restart too."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        for stale in Path(path).glob("*.db"):
            stale.unlink()
    else:
        path = tempfile.mkdtemp(prefix=f"suite-{service}-worker-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        signals.worker_shutdown.connect(lambda **_: shutil.rmtree(path, ignore_errors=True), weak=False)
    prometheus.use_multiprocess_values()


_consumer: dict[str, bool] = {"connected": False}


def _serve_health_and_metrics(port: int) -> None:
    if not port:
        return

    def ready() -> str | None:
        if not _consumer["connected"]:
            return "not connected to the broker"
        try:
            db.connection.ensure_connection()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return f"database: {exc}"
        finally:
            db.connection.close()
        return None

    def start(**_: Any) -> None:
        from common.observability import metrics
        from common.observability.http import serve

        serve(port, metrics.registry(counters=True), ready)

    signals.worker_ready.connect(start, weak=False)
