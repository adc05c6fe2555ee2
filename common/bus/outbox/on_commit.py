"""Dispatch on commit: the process that committed an outbox row publishes it at once, under a lease
that keeps the relays away, and a relay is the safety net. It saves the hop through a relay, whose
scheduling delay on a busy host doubled the p99 latency of an event (docs/performance.md)."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import threading
import time
import uuid
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created

from common.bus import outbox, signals
from common.bus.amqp.confirms import BrokerUnavailable, ConfirmingPublisher, PublishRefused

log = logging.getLogger("common.bus.outbox.on_commit")

BATCH = 1000  # rows per publication batch (one confirm wait, one mark)
MAX_QUEUED = 10_000  # beyond this, new rows go the relay's way: memory stays bounded
PAUSE_AFTER_FAILURE = 5.0  # seconds during which rows go the relay's way after a broker failure
KEEPALIVE = 5.0  # seconds between heartbeats on an idle connection
THREAD = "bus-dispatch"


def _relaxed_in_dispatcher(sender: object, connection: Any, **kwargs: Any) -> None:
    """The dispatcher writes what a relay writes (marks, releases), on its own connection: as the
    relay's, those commits need not wait for the WAL flush, which would otherwise compete with the
    committing process's own."""
    if threading.current_thread().name == THREAD:
        outbox.relaxed_commits(sender, connection)


connection_created.connect(_relaxed_in_dispatcher)


class Dispatcher:
    """One thread with its own broker and database connections: commits only queue rows for it, and
    what queues while it waits for the broker's confirms goes out as the next batch."""

    def __init__(self, amqp_url: str, *, service: str, confirm_timeout: float) -> None:
        self.owner = f"dispatch-{os.getpid()}-{uuid.uuid4().hex[:12]}"  # its rows' lease holder
        publisher = ConfirmingPublisher(amqp_url, confirm_timeout=confirm_timeout, name=f"{service}-dispatch")
        self.out = outbox.RowPublisher(
            publisher, service=service, owner=self.owner, sender=signals.DISPATCHER, log=log
        )
        self._queue: queue.Queue[outbox.Outgoing | None] = queue.Queue()
        self._paused_until = 0.0
        self._thread = threading.Thread(target=self._run, name=THREAD, daemon=True)
        self._thread.start()

    def accepting(self) -> bool:
        """Whether a new row should be leased to this dispatcher rather than left to the relays."""
        return time.monotonic() >= self._paused_until and self._queue.qsize() < MAX_QUEUED

    def submit(self, row: outbox.Outgoing) -> None:
        self._queue.put(row)

    def close(self, timeout: float = 5.0) -> None:
        """Publish what is queued (within `timeout`), then stop; what is left waits for a relay."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=KEEPALIVE)
                except queue.Empty:
                    self.out.publisher.keepalive()
                    continue
                batch: list[outbox.Outgoing] = []
                while item is not None:
                    batch.append(item)
                    if len(batch) >= BATCH or self._queue.empty():
                        break
                    item = self._queue.get_nowait()
                if batch:
                    self._dispatch(batch)
                if item is None:
                    return
        finally:
            self.out.publisher.close()
            connections.close_all()  # this thread's

    def _dispatch(self, batch: list[outbox.Outgoing]) -> None:
        try:
            outcome = self.out.publish(batch)
        except (BrokerUnavailable, PublishRefused) as exc:
            self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
            log.warning("dispatch: %s; %d event(s) left to the relay", exc, len(batch))
            self.out.release(batch)
            return
        self.out.settle(batch, outcome)


_dispatcher: tuple[int, Dispatcher] | None = None
_lock = threading.Lock()


def dispatcher() -> Dispatcher:
    """This process's dispatcher (a forked child gets its own: threads do not survive a fork)."""
    global _dispatcher
    with _lock:
        if _dispatcher is None or _dispatcher[0] != os.getpid():
            timeout = settings.BUS_RELAY_CONFIRM_TIMEOUT
            current = Dispatcher(settings.AMQP_URL, service=settings.SERVICE_NAME, confirm_timeout=timeout)
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
