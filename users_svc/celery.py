"""Celery app of the users service: `celery -A users_svc worker -Q users.events`."""

from common.bus import create_worker_app

app = create_worker_app("users")
