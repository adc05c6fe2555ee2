"""The event bus: publish events, handle them, and the topology between.

Its public face is three names and the management commands (`manage.py <svc> relay`, `dlq`,
`outbox`, `declare_topology`, ...):

- `publish(event, aggregate_id=..., aggregate_version=...)`, inside the producer's transaction
  (`outbox/`: the row, its publication on commit or by a relay);
- `HandlerRegistry`, whose `handles(...)` declares a consumer's handlers (`consume/`);
- `create_worker_app(service)`, the consuming service's Celery app (`consume/worker.py`).

docs/architecture.md follows one event through it all. The names load on first use: this package
is also the Django app, imported before the models may be.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from common.bus.consume.handlers import HandlerRegistry
    from common.bus.consume.worker import create_worker_app
    from common.bus.outbox.publish import publish

__all__ = ["HandlerRegistry", "create_worker_app", "publish"]
_WHERE = {
    "HandlerRegistry": "common.bus.consume.handlers",
    "create_worker_app": "common.bus.consume.worker",
    "publish": "common.bus.outbox.publish",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
