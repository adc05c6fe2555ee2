"""Celery app of the orders service: `celery -A orders_svc worker -Q orders.events`."""

from common.bus import create_worker_app

app = create_worker_app("orders")
