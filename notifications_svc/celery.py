"""Celery app of the notifications service: `celery -A notifications_svc worker -Q notifications.events`."""

from common.bus import create_worker_app

app = create_worker_app("notifications")
