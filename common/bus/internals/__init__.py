"""Every private internal of Celery, kombu, py-amqp, billiard and prometheus-client the bus uses,
one module per library, each use saying what it buys. `tests/unit/common/test_internals.py` pins
the behaviour each relies on at the pinned versions: an upgrade fails a test instead of misbehaving.

`BUS_FAST_PATHS=0` turns off every use that only buys speed (`fast_paths()`); the few that fix a
crash or keep a guarantee stay on, and say so.
"""

from __future__ import annotations


def fast_paths() -> bool:
    """Whether the speed-only internals are in use (on unless the settings turn them off)."""
    from django.conf import settings

    return not settings.configured or bool(settings.BUS_FAST_PATHS)
