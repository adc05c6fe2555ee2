"""The peer: plain Celery as people wire it by hand. `send_task` after save; a task that inserts one
PostgreSQL row; acks_late, JSON, the same pool, concurrency and prefetch as the suite's workers.
`celery -A bench.plain worker -Q plain`"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from celery import Celery

app = Celery("plain")
app.conf.update(
    broker_url=os.environ["AMQP_URL"],
    accept_content=["json"],
    task_serializer="json",
    task_ignore_result=True,
    task_acks_late=True,
    task_default_queue="plain",
    # set by bench.run from the suite's settings, so both workers get the same pool
    worker_concurrency=int(os.environ["WORKER_CONCURRENCY"]),
    worker_prefetch_multiplier=int(os.environ["WORKER_PREFETCH_MULTIPLIER"]),
    worker_hijack_root_logger=False,
)
_connection: dict[str, Any] = {}


@app.task(name="bench.plain_insert")
def plain_insert(n: int, scheduled_at: float) -> None:
    conn = _connection.get("db")
    if conn is None:
        conn = _connection["db"] = psycopg.connect(os.environ["BENCH_CONSUMER_DATABASE_URL"], autocommit=True)
    conn.execute(
        "INSERT INTO bench_effect (n, scheduled_at, handled_at) VALUES (%s, %s, clock_timestamp())",
        (n, scheduled_at),
    )
