"""The relay: takes committed outbox rows to RabbitMQ, in order, at least once. It also prunes the
service's outbox and inbox tables, being the one long-running housekeeping process of the service.

One batch = one database transaction: lock pending rows (`FOR UPDATE SKIP LOCKED`, so several relays
share the work without taking the same row), publish them with pipelined confirms, mark the confirmed
ones published, commit. A relay that dies mid-batch leaves its rows pending (locks die with it); they
are published again later and consumers drop the duplicates by event id.

Per-aggregate order: a batch leaves out an aggregate whose earlier pending row another relay holds,
so one aggregate's events always leave in creation order, whatever the number of relays.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import F, Min
from django.utils import timezone

from common.bus import inbox, outbox
from common.bus.amqp_publisher import BrokerUnavailable, ConfirmingPublisher, PublishRefused
from common.bus.models import OutboxMessage
from common.bus.wire import TaskMessage, task_message
from common.observability import metrics
from common.observability.context import in_flight

log = logging.getLogger("common.bus.relay")
Status = OutboxMessage.Status
NOTIFY_CHANNEL = "bus_outbox"


@dataclass(frozen=True)
class RelayConfig:
    service: str
    amqp_url: str
    batch_size: int = 500
    poll_interval: float = 1.0
    confirm_timeout: float = 15.0
    max_backoff: float = 30.0
    retention: timedelta = timedelta(days=7)
    inbox_retention: timedelta = timedelta(days=30)
    prune_every: float = 300.0


class Relay:
    def __init__(self, config: RelayConfig, *, stop: threading.Event | None = None) -> None:
        self.config = config
        self.stop = stop or threading.Event()
        self.publisher = ConfirmingPublisher(
            config.amqp_url, confirm_timeout=config.confirm_timeout, name=f"{config.service}-relay"
        )
        self.published_total = 0
        self.last_cycle = time.monotonic()
        self._outage_since: float | None = None
        self._backoff = 0.5
        self._single_rows_left = 0  # after a refused batch, go row by row to find the culprit
        self._last_prune = 0.0
        self._after_publish: Callable[[int], None] = _fault_hook()

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        waker = Waker(self.config.poll_interval)
        log.info(
            "relay %s started (batch %d, wake-up %s)",
            self.config.service,
            self.config.batch_size,
            "LISTEN/NOTIFY" if waker.listening else f"polling every {self.config.poll_interval}s",
        )
        try:
            while not self.stop.is_set():
                try:
                    count = self.relay_once()
                except BrokerUnavailable as exc:
                    self._outage(str(exc))
                    continue
                except DatabaseError as exc:
                    log.warning("relay: database error, retrying: %s", exc)
                    close_old_connections()
                    connection.close()
                    self._sleep(self._next_backoff())
                    continue
                self._maybe_prune()
                self.last_cycle = time.monotonic()
                if count < self.config.batch_size and not self._single_rows_left:
                    self.publisher.keepalive()
                    waker.wait(self.stop)
        finally:
            waker.close()
            self.publisher.close()
            log.info("relay %s stopped; published %d", self.config.service, self.published_total)

    def relay_once(self) -> int:
        """Publish one batch; return how many rows it took (0 when nothing was pending)."""
        single = self._single_rows_left > 0
        with transaction.atomic():
            rows = self._lock_batch(1 if single else self.config.batch_size)
            if not rows:
                self._single_rows_left = 0
                return 0
            self._single_rows_left = max(0, self._single_rows_left - 1)
            try:
                outcome = self.publisher.publish([self._message(row) for row in rows])
            except PublishRefused as exc:
                if not single:
                    log.warning("relay: broker refused a batch (%s); retrying row by row", exc)
                    self._single_rows_left = len(rows)
                    return len(rows)
                self._fail([rows[0].id], f"refused by the broker: {exc}")
                return 1
            self._after_publish(len(outcome.confirmed))
            self._record(rows, outcome.confirmed, outcome.unroutable, outcome.nacked)
        self._recovered()
        if outcome.nacked:
            self._sleep(self._next_backoff())
        return len(rows)

    # --- database -------------------------------------------------------------------------------
    def _lock_batch(self, limit: int) -> list[OutboxMessage]:
        rows = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING)
            .order_by("id")
            .only(
                "id", "event_id", "event_type", "aggregate_id", "correlation_id", "causation_id", "envelope"
            )[:limit]
        )
        if not rows:
            return rows
        # An aggregate whose first pending row is not in this batch is held by another relay (or
        # committed late with a smaller id): leave it for a later batch, to keep its order.
        ours: dict[str, int] = {}
        for row in rows:
            ours.setdefault(row.aggregate_id, row.id)
        heads = dict(
            OutboxMessage.objects.filter(status=Status.PENDING, aggregate_id__in=list(ours))
            .values("aggregate_id")
            .annotate(first=Min("id"))
            .values_list("aggregate_id", "first")
        )
        return [row for row in rows if heads.get(row.aggregate_id) == ours[row.aggregate_id]]

    def _message(self, row: OutboxMessage) -> TaskMessage:
        return task_message(
            event_id=str(row.event_id),
            event_type=row.event_type,
            aggregate_id=row.aggregate_id,
            correlation_id=str(row.correlation_id),
            causation_id=str(row.causation_id) if row.causation_id else None,
            envelope_json=row.envelope,
            origin=self.config.service,
        )

    def _record(
        self,
        rows: list[OutboxMessage],
        confirmed: list[str],
        unroutable: dict[str, str],
        nacked: list[str],
    ) -> None:
        rows_by_event = {str(row.event_id): row for row in rows}
        by_event = {event_id: row.id for event_id, row in rows_by_event.items()}
        if confirmed:
            OutboxMessage.objects.filter(id__in=[by_event[e] for e in confirmed]).update(
                status=Status.PUBLISHED, published_at=timezone.now(), last_error=""
            )
            self.published_total += len(confirmed)
            for event_id in confirmed:
                row = rows_by_event[event_id]
                metrics.PUBLISHED.labels(service=self.config.service, type=row.event_type).inc()
                if log.isEnabledFor(logging.DEBUG):
                    with in_flight(
                        correlation=row.correlation_id,
                        causation=row.causation_id,
                        event=row.event_id,
                        kind=row.event_type,
                    ):
                        log.debug("published %s %s", row.event_type, row.event_id)
        for event_id, reason in unroutable.items():
            self._fail([by_event[event_id]], reason)
        if nacked:
            log.warning("relay: broker nacked %d message(s); they stay pending", len(nacked))
            OutboxMessage.objects.filter(id__in=[by_event[e] for e in nacked]).update(
                last_error="nacked by the broker; will retry"
            )
        touched = [by_event[e] for e in [*confirmed, *unroutable, *nacked]]
        if touched:
            OutboxMessage.objects.filter(id__in=touched).update(attempts=F("attempts") + 1)

    def _fail(self, ids: list[int], reason: str) -> None:
        log.error("relay: outbox row(s) %s failed: %s", ids, reason)
        OutboxMessage.objects.filter(id__in=ids).update(status=Status.FAILED, last_error=reason[:2000])

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < self.config.prune_every:
            return
        self._last_prune = now
        pruned = outbox.prune(older_than=self.config.retention)
        forgotten = inbox.prune(older_than=self.config.inbox_retention)
        if pruned or forgotten:
            log.info("relay: pruned %d published outbox row(s) and %d inbox row(s)", pruned, forgotten)

    # --- outages --------------------------------------------------------------------------------
    def not_ready(self) -> str | None:
        """Why this relay cannot do its job now, or None (its readiness probe)."""
        if self._outage_since is not None:
            return f"broker unavailable for {time.monotonic() - self._outage_since:.0f}s"
        stalled = time.monotonic() - self.last_cycle
        if stalled > max(60.0, self.config.confirm_timeout * 2):
            return f"no relay cycle for {stalled:.0f}s"
        return None

    def _outage(self, reason: str) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.error("relay: broker unavailable (%s); events stay in the outbox, retrying", reason)
        self._sleep(self._next_backoff())

    def _recovered(self) -> None:
        self._backoff = 0.5
        if self._outage_since is not None:
            down = time.monotonic() - self._outage_since
            self._outage_since = None
            log.warning("relay: broker reachable again after %.1fs; publishing the backlog", down)

    def _next_backoff(self) -> float:
        delay, self._backoff = self._backoff, min(self._backoff * 2, self.config.max_backoff)
        return delay

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)


class Waker:
    """Wait until an outbox insert commits (PostgreSQL LISTEN) or the poll interval passes."""

    def __init__(self, poll_interval: float) -> None:
        self.poll_interval = poll_interval
        self._listener: Any = None
        self._warned = False
        self._listen()

    def _listen(self) -> None:
        if connection.vendor != "postgresql":
            return
        import psycopg

        try:
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            listener = psycopg.connect(**params, autocommit=True)
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._listener, self._warned = listener, False
        except Exception as exc:  # noqa: BLE001 - without LISTEN the relay still polls
            if not self._warned:
                log.warning("relay: LISTEN unavailable (%s); polling every %.1fs", exc, self.poll_interval)
                self._warned = True
            self._listener = None

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def wait(self, stop: threading.Event) -> None:
        if self._listener is None:
            stop.wait(self.poll_interval)
            self._listen()  # PostgreSQL: try to get the push wake-up back
            return
        try:
            for _ in self._listener.notifies(timeout=min(self.poll_interval, 1.0), stop_after=1):
                break
        except Exception as exc:  # noqa: BLE001 - reconnect the listener on the next wait
            log.warning("relay: LISTEN connection lost (%s); polling", exc)
            self.close()

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):  # it may already be broken
                self._listener.close()
            self._listener = None


def _fault_hook() -> Callable[[int], None]:
    """Test-only fault injection (APP_ENV=test): die by SIGKILL right after a batch is confirmed,
    before it is marked published: the 'blowing up just after dispatch' case."""
    if os.environ.get("APP_ENV") != "test" or os.environ.get("SUITE_FAULT") != "relay-kill-after-publish":
        return lambda confirmed: None

    def die(confirmed: int) -> None:
        if confirmed:
            os.kill(os.getpid(), signal.SIGKILL)

    return die
