"""A Celery app for Flower alone: `celery -A common.monitor flower`.

Flower watches the workers of every service through the broker's event stream; it needs no service's
tasks, only the broker and the same JSON-only settings.
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery("monitor", set_as_current=True)
app.conf.update(
    broker_url=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    broker_connection_retry_on_startup=True,
    accept_content=["json"],
    task_serializer="json",
    result_accept_content=["json"],
    task_create_missing_queues=False,
)
