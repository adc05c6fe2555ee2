"""The bus's Prometheus metrics by service and event type. Counters are shared by a worker's pool
processes (`PROMETHEUS_MULTIPROC_DIR`); state gauges are read from the database when scraped, so every
process reports the same truth."""

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


COUNTERS = (PUBLISHED, CONSUMED, DUPLICATES, RETRIED, DEAD_LETTERED, HANDLER_DURATION, BATCH_SIZE)
STATE_GAUGES = {
    "suite_outbox_pending": "Committed events not yet published.",
    "suite_outbox_oldest_pending_age_seconds": "Age of the oldest pending event.",
    "suite_outbox_failed": "Events that failed to publish for good (see the admin).",
    "suite_dead_letter_queue_depth": "Dead letters parked (collected from the dead-letter queue by the "
    "relay every few seconds).",
}


class BusStateCollector(Collector):
    def __init__(self, service: str, amqp_url: str) -> None:
        self.service, self.amqp_url = service, amqp_url

    def describe(self) -> list[GaugeMetricFamily]:
        """Without values: prometheus-client registers a collector by what it describes, without
        scraping it (no database or broker needed)."""
        return [GaugeMetricFamily(name, text, labels=["service"]) for name, text in STATE_GAUGES.items()]

    def collect(self) -> list[GaugeMetricFamily]:
        from common.bus import outbox  # needs the app registry: imported when scraped
        from common.bus.ops.deadletters import DeadLetterQueue

        state = outbox.state()
        gauges = pending, age, failed, dead_letters = self.describe()
        pending.add_metric([self.service], state.pending)
        age.add_metric([self.service], state.oldest_pending_age_seconds)
        failed.add_metric([self.service], state.failed)
        with contextlib.suppress(Exception):  # no table yet (not migrated): no sample, not a failed scrape
            dead_letters.add_metric([self.service], DeadLetterQueue(self.amqp_url, self.service).depth())
        return gauges


_registered: list[str] = []


def register(service: str, amqp_url: str) -> None:
    """Once per process (the bus app's `ready`)."""
    if not _registered:
        _registered.append(service)
        metrics.add(counters=COUNTERS, scraped=[BusStateCollector(service, amqp_url)])
