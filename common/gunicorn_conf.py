"""Gunicorn settings shared by the three APIs (`--config python:common.gunicorn_conf`)."""

import os

workers = int(os.environ.get("WEB_WORKERS", "1"))
threads = int(os.environ.get("WEB_THREADS", "8"))
worker_class = "gthread"
accesslog = "-"
# Several gunicorns run on one machine: the default shared control socket path would collide.
control_socket_disable = True
graceful_timeout = 20
# Gunicorn would believe X-Forwarded-Proto from 127.0.0.1 by default: the settings decide instead,
# from DJANGO_TRUSTED_PROXIES (common/settings/base.py), for every address alike.
secure_scheme_headers: dict[str, str] = {}
