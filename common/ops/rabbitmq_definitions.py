"""Write a RabbitMQ definitions file: one user per service with least privilege, a monitoring user
for Flower, an administrator, and the queues' policies (`common.ops.rabbitmq_policies`).
`python -m common.ops.rabbitmq_definitions > definitions.json`

Passwords come from the environment (RABBITMQ_<USER>_PASSWORD); only their salted SHA-256 hashes
(RabbitMQ's rabbit_password_hashing_sha256) go into the file.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from common.bus.amqp import topology
from common.cli import SERVICES
from common.contracts import registered
from common.ops.rabbitmq_policies import DEFAULT_DELIVERY_LIMIT, policies
from common.settings.guards import refuse_placeholder

ADMIN, MONITOR = "admin", "flower"
# Celery's own machinery every worker needs: the native delayed-delivery exchanges and queues, the
# task-event exchange Flower listens to, and the remote-control (pidbox) exchanges.
_CELERY_SHARED = r"celery_delayed_.*|celeryev|celery\.pidbox|reply\.celery\.pidbox"
# what workers publish to among those: not the broadcast exchange
_CELERY_WRITTEN = r"celery_delayed_.*|celeryev|reply\.celery\.pidbox"
# Flower: its own auto-delete event queue, remote-control broadcasts and their replies
_MONITORED = r"^(celeryev.*|celery\.pidbox|reply\.celery\.pidbox|.+\.reply\.celery\.pidbox)$"
MONITOR_PERMISSIONS = {"configure": _MONITORED, "write": _MONITORED, "read": _MONITORED}


def permissions(service: str) -> dict[str, str]:
    """A service's broker user may publish to `events` and declare, bind and read only its own
    queues (its worker's pidbox queue is named `<service>…@host.celery.pidbox`). It may not publish
    to `celery.pidbox`: a broadcast there (`shutdown`) reaches every service's workers; its workers
    only bind to it and answer on `reply.celery.pidbox`."""
    own = rf"{service}\.events(\.dlq|\.handover)?|{service}[^@]*@.+\.celery\.pidbox"
    everything = rf"^(events|events\.dlx|{own}|{_CELERY_SHARED})$"
    no_broadcast = rf"^(events|events\.dlx|{own}|{_CELERY_WRITTEN})$"
    return {"configure": everything, "write": no_broadcast, "read": everything}


def topic_permissions(service: str) -> dict[str, str]:
    """On the `events` exchange, the routing keys (event types) a service may publish: those its
    contracts say it produces, and its own retry key. RabbitMQ refuses any other (another
    service's `user.updated` from orders, say); consumers also check the message's user_id."""
    produced = sorted(cls.event_type for cls in registered().values() if cls.producer == service)
    keys = [re.escape(key) for key in (*dict.fromkeys(produced), topology.retry_routing_key(service))]
    return {"exchange": topology.EVENTS_EXCHANGE.name, "write": f"^({'|'.join(keys)})$", "read": ".*"}


def password_hash(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(
    passwords: dict[str, str], vhost: str = "/", delivery_limit: int = DEFAULT_DELIVERY_LIMIT
) -> dict[str, Any]:
    def user(name: str, tags: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "password_hash": password_hash(passwords[name]),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": tags,
            "limits": {},
        }

    users = [user(ADMIN, ["administrator"]), user(MONITOR, ["monitoring"])]
    users += [user(service, []) for service in SERVICES]
    grants = [
        {"user": ADMIN, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"},
        {"user": MONITOR, "vhost": vhost, **MONITOR_PERMISSIONS},
    ]
    grants += [{"user": service, "vhost": vhost, **permissions(service)} for service in SERVICES]
    return {
        "users": users,
        "vhosts": [{"name": vhost}],
        "permissions": grants,
        "topic_permissions": [{"user": s, "vhost": vhost, **topic_permissions(s)} for s in SERVICES],
        "policies": [{"vhost": vhost, **p} for p in policies(delivery_limit=delivery_limit)],
    }


def password_variables() -> dict[str, str]:
    return {n: f"RABBITMQ_{n.upper()}_PASSWORD" for n in (ADMIN, MONITOR, *SERVICES)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, help="write the file here (default: standard output)")
    args = parser.parse_args(argv)
    variables = password_variables()
    missing = [v for v in variables.values() if not os.environ.get(v)]
    if missing:
        print(f"set {', '.join(missing)}", file=sys.stderr)
        return 2
    for variable in variables.values():
        try:
            refuse_placeholder(variable, os.environ[variable])
        except ImproperlyConfigured as exc:
            print(exc, file=sys.stderr)
            return 2
    passwords = {n: os.environ[v] for n, v in variables.items()}
    text = json.dumps(definitions(passwords), indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
