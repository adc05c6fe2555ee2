"""Dispatch on commit: the process that committed an outbox row publishes it right away, and the
relay is the safety net.

Why: through the relay an event crosses two more processes (the relay and its database session)
before it reaches the broker, and on a busy host each adds its own scheduling delay; at p99 that
doubled the latency of plain Celery's `send_task` after commit (docs/performance.md). Publishing from
the committing process removes the hop and keeps every guarantee: the row is written in the
caller's transaction as before, under a lease (`claimed_until`) that keeps relays away while this
process publishes it. What the broker answers is written as a relay writes it (`outbox.settle`);
a row this process cannot publish (the broker is away) is released to the relays at once; one it
never gets to (the process died, say) waits out its lease and a relay publishes it then. A row
published here and again by a relay (the mark was lost) is a duplicate the consumers' inbox drops.

One thread per process (created on first use, again after a fork) with its own broker connection
and database connection: commits only queue work for it, and what queues while it waits for the
broker's confirms goes out as the next batch.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import DatabaseError, connections

from common.bus import metrics, outbox, signals
from common.bus.amqp.confirms import BatchOutcome, BrokerUnavailable, ConfirmingPublisher, PublishRefused
from common.bus.amqp.wire import TaskMessage
from common.observability.context import message_context

log = logging.getLogger("common.bus.outbox.on_commit")

BATCH = 1000  # rows per publication batch (one confirm wait, one mark)
MAX_QUEUED = 10_000  # beyond this, new rows go the relay's way: memory stays bounded
PAUSE_AFTER_FAILURE = 5.0  # seconds during which rows go the relay's way after a broker failure
KEEPALIVE = 5.0  # seconds between heartbeats on an idle connection


@dataclass(frozen=True)
class Committed:
    """An outbox row whose transaction committed: what its message and its mark need."""

    row_id: int
    using: str
    event_type: str
    message: TaskMessage


class Dispatcher:
    def __init__(self, amqp_url: str, *, service: str, confirm_timeout: float) -> None:
        self.service = service
        self.owner = f"dispatch-{os.getpid()}-{uuid.uuid4().hex[:12]}"  # its rows' lease holder
        self.publisher = ConfirmingPublisher(
            amqp_url, confirm_timeout=confirm_timeout, name=f"{service}-dispatch"
        )
        self._queue: queue.Queue[Committed | None] = queue.Queue()
        self._paused_until = 0.0
        self._thread = threading.Thread(target=self._run, name="bus-dispatch", daemon=True)
        self._thread.start()

    def accepting(self) -> bool:
        """Whether a new row should be leased to this dispatcher rather than left to the relays."""
        return time.monotonic() >= self._paused_until and self._queue.qsize() < MAX_QUEUED

    def submit(self, committed: Committed) -> None:
        self._queue.put(committed)

    def close(self, timeout: float = 5.0) -> None:
        """Publish what is queued (within `timeout`), then stop; what is left waits for a relay."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                try:
                    first = self._queue.get(timeout=KEEPALIVE)
                except queue.Empty:
                    self.publisher.keepalive()
                    continue
                batch, stop = self._take(first)
                if batch:
                    self._dispatch(batch)
                if stop:
                    return
        finally:
            self.publisher.close()
            connections.close_all()  # this thread's

    def _take(self, first: Committed | None) -> tuple[list[Committed], bool]:
        """`first` and whatever else is queued, up to a batch; whether a stop was asked."""
        batch: list[Committed] = []
        item = first
        while item is not None:
            batch.append(item)
            if len(batch) >= BATCH:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _dispatch(self, batch: list[Committed]) -> None:
        signals.before_publish.send(signals.DISPATCHER, count=len(batch))
        try:
            outcome = self._publish([item.message for item in batch])
        except (BrokerUnavailable, PublishRefused) as exc:
            self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
            log.warning("dispatch: %s; %d event(s) left to the relay", exc, len(batch))
            self._release(batch)
            return
        self._settle(batch, outcome)

    def _publish(self, messages: list[TaskMessage]) -> BatchOutcome:
        """Send and wait for the confirms; once more on a fresh connection if the kept one had gone
        stale (a broker restart while idle): nothing of a failed send is confirmed."""
        try:
            return self.publisher.publish(messages)
        except BrokerUnavailable:
            return self.publisher.publish(messages)

    def _settle(self, batch: list[Committed], outcome: BatchOutcome) -> None:
        by_alias: dict[str, dict[str, int]] = {}
        for item in batch:
            by_alias.setdefault(item.using, {})[item.message.properties["message_id"]] = item.row_id
        for using, row_ids in by_alias.items():
            try:
                outbox.settle(outcome, row_ids, owner=self.owner, using=using)
            except DatabaseError as exc:  # the lease runs out: published again, deduplicated
                log.warning("dispatch: could not mark %d published row(s): %s", len(row_ids), exc)
                connections[using].close()
        confirmed = set(outcome.confirmed)
        done = [item for item in batch if item.message.properties["message_id"] in confirmed]
        metrics.count_published(self.service, (item.event_type for item in done))
        if log.isEnabledFor(logging.DEBUG):
            for item in done:
                with message_context(item.message.headers):
                    log.debug("published %s %s", item.event_type, item.message.properties["message_id"])

    def _release(self, items: list[Committed]) -> None:
        for using, ids in _by_alias(items).items():
            try:
                outbox.release(ids, owner=self.owner, using=using)
            except DatabaseError as exc:  # then the lease runs out
                log.warning("dispatch: could not release %d row(s) to the relay: %s", len(ids), exc)
                connections[using].close()


def _by_alias(items: Iterable[Committed]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for item in items:
        grouped.setdefault(item.using, []).append(item.row_id)
    return grouped


_dispatcher: tuple[int, Dispatcher] | None = None
_lock = threading.Lock()


def dispatcher() -> Dispatcher:
    """This process's dispatcher (a forked child gets its own: threads do not survive a fork)."""
    global _dispatcher
    with _lock:
        if _dispatcher is None or _dispatcher[0] != os.getpid():
            from django.conf import settings

            current = Dispatcher(
                settings.AMQP_URL,
                service=settings.SERVICE_NAME,
                confirm_timeout=settings.BUS_RELAY_CONFIRM_TIMEOUT,
            )
            _dispatcher = (os.getpid(), current)
            atexit.register(current.close)
        return _dispatcher[1]


def stop() -> None:
    """Publish what is queued and stop this process's dispatcher (tests; exit does it too)."""
    global _dispatcher
    with _lock:
        if _dispatcher is not None and _dispatcher[0] == os.getpid():
            with contextlib.suppress(Exception):
                _dispatcher[1].close()
        _dispatcher = None
