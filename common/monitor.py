"""A Celery app for Flower alone: `celery -A common.monitor flower`.

Flower watches the workers of every service through the broker's event stream; it needs no service's
tasks, only the broker and the same JSON-only settings. Flower can revoke tasks and shut workers
down, so outside local development it refuses to start without authentication (FLOWER_BASIC_AUTH,
or FLOWER_AUTH_PROVIDER with an anchored FLOWER_AUTH regex). Its /metrics and /healthcheck paths
skip authentication by design: keep Flower on a private network.
"""

from __future__ import annotations

import os

from celery import Celery

from common.settings.env import amqp_url
from common.settings.guards import refuse_placeholder

if os.environ.get("APP_ENV", "local") != "local" and not (
    os.environ.get("FLOWER_BASIC_AUTH") or os.environ.get("FLOWER_AUTH_PROVIDER")
):
    raise SystemExit(
        "Flower needs authentication outside local development (APP_ENV is "
        f"{os.environ.get('APP_ENV')!r}): set FLOWER_BASIC_AUTH=user:password, or FLOWER_AUTH_PROVIDER "
        "and FLOWER_AUTH for OAuth"
    )
if os.environ.get("APP_ENV", "local") != "local":
    refuse_placeholder("FLOWER_BASIC_AUTH", os.environ.get("FLOWER_BASIC_AUTH", ""))

app = Celery("monitor", set_as_current=True)
app.conf.update(
    broker_url=amqp_url(),
    broker_connection_retry_on_startup=True,
    accept_content=["json"],
    task_serializer="json",
    result_accept_content=["json"],
    task_create_missing_queues=False,
)
