"""A process's Prometheus registry: counters (a worker's pool processes share them through
prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`) and collectors computed when
scraped, each added by the part of the suite that owns them (the bus: `common.bus.metrics`)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.registry import Collector

_counters: list[Collector] = []
_scraped: list[Collector] = []


def add(*, counters: Iterable[Collector] = (), scraped: Iterable[Collector] = ()) -> None:
    _counters.extend(c for c in counters if c not in _counters)
    _scraped.extend(scraped)


def registry(*, counters: bool) -> CollectorRegistry:
    """What a process exposes: what is computed when scraped, and the counters (all processes of
    it) if it has any."""
    out = CollectorRegistry()
    for collector in _scraped:
        out.register(collector)
    if counters:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.MultiProcessCollector(out)  # type: ignore[no-untyped-call]
        else:
            for collector in _counters:
                out.register(collector)
    return out
