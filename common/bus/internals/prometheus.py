"""prometheus-client internals. Always on: the worker's pool processes count into the files of one
directory, but the `celery` command imported prometheus-client (through Flower's plugin) before the
worker app set that directory, so the value class it chose then is chosen again."""

from __future__ import annotations

from prometheus_client import values


def use_multiprocess_values() -> None:
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
