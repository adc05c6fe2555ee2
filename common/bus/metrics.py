"""The bus's Prometheus metrics, by service and event type, registered with the process's registry
(`common.observability.metrics`) when the bus app is ready.

Counters are incremented where things happen (a dispatcher, a relay, the consumer, the worker's main
process); a worker's pool processes share them through prometheus-client's multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR`, set up by the worker before anything imports this module). Gauges about
state (outbox, dead letters) are read from the database when scraped, so every process reports the
truth.
"""

from __future__ import annotations

import contextlib
from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from common.observability import metrics

PUBLISHED = Counter(
    "suite_events_published",
    "Events published and confirmed by the broker (by the committing process or a relay).",
    ["service", "type"],
)


def count_published(service: str, event_types: Iterable[str]) -> None:
    """One increment per type for a confirmed batch (the relay's or a dispatcher's)."""
    for event_type, count in Tally(event_types).items():
        PUBLISHED.labels(service=service, type=event_type).inc(count)


CONSUMED = Counter("suite_events_consumed", "Events whose handler ran and committed.", ["service", "type"])
DUPLICATES = Counter(
    "suite_events_duplicates", "Deliveries skipped: the event id was already handled.", ["service", "type"]
)
RETRIED = Counter(
    "suite_events_retried", "Transient failures scheduled for a delayed retry.", ["service", "type"]
)
DEAD_LETTERED = Counter(
    "suite_events_dead_lettered",
    "Messages parked in the service's dead-letter queue, by why.",
    ["service", "type", "kind"],
)
HANDLER_DURATION = Histogram(
    "suite_handler_duration_seconds",
    "Time in the handler's transaction, inbox included.",
    ["service", "type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

BATCH_SIZE = Histogram(
    "suite_consumer_batch_events",
    "Events handed to a pool process together (1: alone, through Celery's tracer).",
    ["service"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)


# What processes count (a worker's pool processes through the multiprocess files).
COUNTERS = (PUBLISHED, CONSUMED, DUPLICATES, RETRIED, DEAD_LETTERED, HANDLER_DURATION, BATCH_SIZE)

# The state gauges, by name: (help, what of the outbox state they show; None for the queue depth).
STATE_GAUGES: dict[str, tuple[str, str | None]] = {
    "suite_outbox_pending": ("Committed events not yet published.", "pending"),
    "suite_outbox_oldest_pending_age_seconds": (
        "Age of the oldest pending event.",
        "oldest_pending_age_seconds",
    ),
    "suite_outbox_failed": ("Events that failed to publish for good (see the admin).", "failed"),
    "suite_dead_letter_queue_depth": (
        "Dead letters parked (collected from the dead-letter queue by the relay every few seconds).",
        None,
    ),
}


class BusStateCollector(Collector):
    """Outbox and dead-letter queue gauges of one service, computed at scrape time."""

    def __init__(self, service: str, amqp_url: str) -> None:
        self.service, self.amqp_url = service, amqp_url

    def describe(self) -> Iterable[GaugeMetricFamily]:
        """The gauges without values: prometheus-client registers a collector by what it describes,
        without scraping it (no database or broker needed)."""
        for name, (text, _) in STATE_GAUGES.items():
            yield GaugeMetricFamily(name, text, labels=["service"])

    def collect(self) -> Iterable[GaugeMetricFamily]:
        from common.bus import outbox  # needs the app registry: imported when scraped
        from common.bus.consume.deadletters import DeadLetterQueue

        state = outbox.state()
        for gauge in self.describe():
            field = STATE_GAUGES[gauge.name][1]
            if field is not None:
                gauge.add_metric([self.service], getattr(state, field))
            else:  # no table yet (not migrated): no sample, rather than a failed scrape
                with contextlib.suppress(Exception):
                    gauge.add_metric([self.service], DeadLetterQueue(self.amqp_url, self.service).depth())
            yield gauge


_registered: list[str] = []


def register(service: str, amqp_url: str) -> None:
    """Once per process (the bus app's `ready`)."""
    if not _registered:
        _registered.append(service)
        metrics.add(counters=COUNTERS, scraped=[BusStateCollector(service, amqp_url)])
