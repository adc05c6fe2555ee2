"""The relay: the safety net that takes committed outbox rows to RabbitMQ, in order per aggregate, at
least once, and the service's one long-running process, so it also prunes and runs housekeeping."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.db import DatabaseError, close_old_connections, connection, connections

from common.bus import outbox, signals
from common.bus.amqp.confirms import BrokerUnavailable, ConfirmingPublisher, PublishRefused
from common.bus.amqp.wire import task_message
from common.bus.models import OutboxMessage
from common.bus.outbox import Outgoing

log = logging.getLogger("common.bus.outbox.relay")
# Batches in flight: the next is read from the database and sent while the broker confirms the last.
IN_FLIGHT = 2


CLAIM = """
WITH candidates AS (
    SELECT id, aggregate_id FROM {table}
    WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until < {now})
    ORDER BY id LIMIT %(limit)s
    {skip_locked}
), firsts AS (
    SELECT aggregate_id, min(id) AS first_id FROM candidates GROUP BY aggregate_id
), eligible AS (
    SELECT c.id AS eligible_id FROM candidates c JOIN firsts f ON f.aggregate_id = c.aggregate_id
    WHERE NOT EXISTS (
        SELECT 1 FROM {table} p
        WHERE p.status = 'pending' AND p.aggregate_id = c.aggregate_id AND p.id < f.first_id
    )
)
UPDATE {table} AS o SET claimed_until = {until}, claimed_by = %(owner)s, attempts = o.attempts + 1
FROM eligible WHERE o.id = eligible.eligible_id
RETURNING id, CAST(event_id AS text), event_type, aggregate_id, CAST(correlation_id AS text),
          CAST(causation_id AS text), envelope, (SELECT count(*) FROM candidates)
"""


# The rows claimed, and whether the claim looked at a full batch of pending rows: a backlog. A batch
# can be short with a backlog (rows of aggregates whose earlier events are in flight wait their turn).
Claimed = tuple[list[Outgoing], bool]


LISTENING_POLL = 5.0  # seconds between claims of an idle relay that NOTIFY wakes


@dataclass(frozen=True)
class RelayConfig:
    service: str
    amqp_url: str
    batch_size: int = 1000
    poll_interval: float = 1.0
    confirm_timeout: float = 15.0
    max_backoff: float = 30.0
    retention: timedelta = timedelta(days=7)
    prune_every: float = 300.0
    # other tables to prune as often (the consumers' inbox): each returns how many rows it removed
    pruning: tuple[Callable[[], int], ...] = ()
    # the service's own housekeeping (BUS_HOUSEKEEPING: say, mailing committed notifications), run
    # every second between batches; each returns how much it did
    housekeeping: tuple[Callable[[], int], ...] = ()
    housekeeping_every: float = 1.0
    # how long a claimed batch is left alone by other relays: past it, a relay that died mid-batch
    # is assumed dead and its rows are published again
    lease: timedelta = timedelta(seconds=60)


class Relay:
    def __init__(self, config: RelayConfig, *, stop: threading.Event | None = None) -> None:
        self.config = config
        self.stop = stop or threading.Event()
        self.publisher = ConfirmingPublisher(
            config.amqp_url, confirm_timeout=config.confirm_timeout, name=f"{config.service}-relay"
        )
        self.owner = f"relay-{os.getpid()}-{uuid.uuid4().hex[:12]}"  # its leases' holder
        self.out = outbox.RowPublisher(
            self.publisher, service=config.service, owner=self.owner, sender=signals.RELAY, log=log
        )
        self.last_cycle = time.monotonic()
        self._outage_since: float | None = None
        self._backoff = 0.5
        self._single_rows_left = 0  # after a refused batch, go row by row to find the culprit
        self._flights: deque[tuple[list[Outgoing], list[str]]] = deque()  # sent, not yet settled
        self._marker: ThreadPoolExecutor | None = None
        self._marks: deque[Future[None]] = deque()
        self._claimer: ThreadPoolExecutor | None = None
        self._prefetched: Future[Claimed] | None = None
        self.backlog = False
        self._last_prune = 0.0
        self._last_housekeeping = 0.0

    @property
    def published_total(self) -> int:
        return self.out.published

    def run(self) -> None:
        waker = Waker(self.config.poll_interval)
        log.info(
            "relay %s started (batch %d, wake-up %s)",
            self.config.service,
            self.config.batch_size,
            "LISTEN/NOTIFY" if waker.listener else f"polling every {self.config.poll_interval}s",
        )
        try:
            with self._pipeline():
                while not self.stop.is_set():
                    self._housekeep()  # also while the broker is away: it needs none
                    try:
                        claimed = self.step()
                        self._prune()
                        busy = claimed or self._flights or self._single_rows_left
                    except BrokerUnavailable as exc:
                        self._outage(str(exc))
                        continue
                    except DatabaseError as exc:
                        log.warning("relay: database error, retrying: %s", exc)
                        self._abandon()
                        self._prefetched = None  # its rows' lease runs out
                        close_old_connections()
                        connection.close()
                        self._back_off()
                        continue
                    if not gc.get_freeze_count():
                        # the first cycle imported everything: a full collection of that heap
                        # paused the relay, and every event waiting behind it
                        gc.collect()
                        gc.freeze()
                    self.last_cycle = time.monotonic()
                    if not busy:
                        self._idle(waker)
                while self._flights:
                    self._settle_oldest()
        finally:
            waker.close()
            self.publisher.close()
            connection.close()  # this thread's: the loop may run on a thread that outlives it
            log.info("relay %s stopped; published %d", self.config.service, self.published_total)

    def _idle(self, waker: Waker) -> None:
        """Until rows may wait: a NOTIFY (a row committed unleased, or rows released), or the poll
        interval, which with LISTEN is only the safety net for expired leases. Housekeeping and
        heartbeats go on meanwhile, without a claim: a claim on every wake-up delayed the events
        published meanwhile on a small host (docs/performance.md)."""
        listening = waker.listener is not None
        poll = max(self.config.poll_interval, LISTENING_POLL) if listening else self.config.poll_interval
        deadline = time.monotonic() + poll
        while not self.stop.is_set():
            try:
                self.publisher.keepalive(reconnect=True)  # an idle relay's readiness tells the truth
            except BrokerUnavailable as exc:
                self._outage(str(exc))
                return
            self._recovered()
            self.last_cycle = time.monotonic()
            left = deadline - time.monotonic()
            if left <= 0 or waker.wait(self.stop, min(left, self.config.housekeeping_every)):
                return
            self._housekeep()

    def relay_once(self) -> int:
        """Publish one batch and settle it before returning (tests); how many rows it took."""
        return self.step(depth=1)

    def drain(self) -> int:
        """Publish everything pending now, pipelined as in `run`; how many rows were published."""
        before = self.published_total
        with self._pipeline():
            while self.step() or self._flights:
                pass
        return self.published_total - before

    def step(self, depth: int = IN_FLIGHT) -> int:
        """Claim and send one batch, then settle the oldest batch in flight once `depth` are: while
        the broker confirms one batch, the next is read and sent. How many rows were claimed."""
        single = self._single_rows_left > 0
        if single:
            depth = 1  # isolating a refused row: nothing else in flight
            self._release_prefetched()
        future, self._prefetched = self._prefetched, None
        limit = 1 if single else self.config.batch_size
        rows, self.backlog = future.result() if future else self._claim(limit)
        if rows:
            self._single_rows_left = max(0, self._single_rows_left - 1)
            if self._claimer is not None and not single and self.backlog:
                # read the next batch on another connection while this one is sent and confirmed
                self._prefetched = self._claimer.submit(self._claim_on_own_connection, self.config.batch_size)
            try:
                self._flights.append((rows, self.out.send(rows)))
            except (BrokerUnavailable, PublishRefused) as exc:
                self._interrupted(rows, exc)
                return len(rows)
        elif single:
            self._single_rows_left = 0
        if self._flights and (len(self._flights) >= depth or not rows):
            self._settle_oldest()
        return len(rows)

    def _settle_oldest(self) -> None:
        rows, sent = self._flights.popleft()
        try:
            outcome = self.out.wait(sent)
        except (BrokerUnavailable, PublishRefused) as exc:
            self._interrupted(rows, exc)
            return
        if self._marker is None:
            self.out.settle(rows, outcome)
        else:
            # marked off the path from commit to broker, in order; a batch not yet marked keeps its
            # lease, so no other batch takes its rows or jumps its aggregates
            self._marks.append(self._marker.submit(self.out.settle, rows, outcome))
            if len(self._marks) > IN_FLIGHT:
                self._marks.popleft().result()
        self._recovered()
        if outcome.nacked:
            self._back_off()

    def _interrupted(self, rows: list[Outgoing], exc: BrokerUnavailable | PublishRefused) -> None:
        """Nothing in flight will be confirmed. A refused row sent alone (its refusal comes while its
        confirm is awaited) is the culprit: it fails; a refused batch is retried row by row."""
        in_flight = self._abandon()
        if isinstance(exc, PublishRefused) and len(rows) == 1 and not in_flight:
            outbox.fail([rows[0].id], f"refused by the broker: {exc}", owner=self.owner)
            return
        self.out.release(rows)
        if isinstance(exc, BrokerUnavailable):
            self._release_prefetched()
            raise exc
        log.warning("relay: broker refused a batch (%s); retrying row by row", exc)
        self._single_rows_left = len(rows) + len(in_flight)

    def _abandon(self) -> list[Outgoing]:
        """Release the rows of every batch in flight (their confirms will not come): back in line."""
        rows = [row for batch, _ in self._flights for row in batch]
        self._flights.clear()
        self.out.release(rows)
        return rows

    @contextlib.contextmanager
    def _pipeline(self) -> Iterator[None]:
        self._marker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-marker")
        self._claimer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-claimer")
        try:
            yield
        finally:
            self._release_prefetched()
            for pool in (self._claimer, self._marker):  # the marker after its queued marks
                pool.submit(connections.close_all).result()  # that thread's own
                pool.shutdown()
            self._claimer = self._marker = None
            self._marks.clear()

    def _claim(self, limit: int) -> Claimed:
        """Lease up to `limit` pending rows, oldest first, in one statement (no transaction is held
        while they are published), leaving out any aggregate whose first pending row is not among
        them: one aggregate's events leave in creation order, however many relays run."""
        skip_locked = connection.features.has_select_for_update_skip_locked
        claim = CLAIM.format(
            table=OutboxMessage._meta.db_table,
            skip_locked="FOR UPDATE SKIP LOCKED" if skip_locked else "",
            now=outbox.db_now(connection),
            until=outbox.db_later(connection, self.config.lease.total_seconds()),
        )
        with connection.cursor() as cursor:
            cursor.execute(claim, {"limit": limit, "owner": self.owner})
            fetched = sorted(cursor.fetchall(), key=lambda row: row[0])
        # PostgreSQL casts a UUID to its canonical text, SQLite to the hex digits Django stores
        text = str if connection.vendor == "postgresql" else lambda value: str(UUID(value))
        rows = [
            Outgoing(
                id,
                task_message(
                    event_id=text(event),
                    event_type=kind,
                    aggregate_id=aggregate,
                    correlation_id=text(correlation),
                    causation_id=text(cause) if cause else None,
                    envelope_json=envelope,
                    origin=self.config.service,
                ),
            )
            for id, event, kind, aggregate, correlation, cause, envelope, _ in fetched
        ]
        return rows, bool(fetched) and fetched[0][7] >= limit

    def _claim_on_own_connection(self, limit: int) -> Claimed:
        try:
            return self._claim(limit)
        finally:
            close_old_connections()

    def _release_prefetched(self) -> None:
        future, self._prefetched = self._prefetched, None
        if future is not None:
            with contextlib.suppress(DatabaseError):  # the claim failed: nothing to release
                self.out.release(future.result()[0])

    def _prune(self) -> None:
        if time.monotonic() - self._last_prune < self.config.prune_every:
            return
        self._last_prune = time.monotonic()
        pruned = outbox.prune(older_than=self.config.retention)
        others = sum(prune() for prune in self.config.pruning)
        if pruned or others:
            log.info("relay: pruned %d published outbox row(s) and %d other row(s)", pruned, others)

    def _housekeep(self) -> None:
        if time.monotonic() - self._last_housekeeping < self.config.housekeeping_every:
            return
        self._last_housekeeping = time.monotonic()
        for task in self.config.housekeeping:
            try:
                done = task()
            except Exception:  # one task's failure must not stop the relay or the other tasks
                log.exception("relay: housekeeping %s failed", getattr(task, "__qualname__", task))
                close_old_connections()
                continue
            if done:
                log.debug("relay: housekeeping %s did %d", getattr(task, "__qualname__", task), done)

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
        self._back_off()

    def _recovered(self) -> None:
        self._backoff = 0.5
        if self._outage_since is not None:
            down = time.monotonic() - self._outage_since
            self._outage_since = None
            log.warning("relay: broker reachable again after %.1fs; publishing the backlog", down)

    def _back_off(self) -> None:
        self.stop.wait(self._backoff)
        self._backoff = min(self._backoff * 2, self.config.max_backoff)


class Waker:
    """Wait until an outbox insert commits (PostgreSQL LISTEN) or the poll interval passes."""

    def __init__(self, poll_interval: float) -> None:
        self.poll_interval = poll_interval
        self.listener: Any = None
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
            listener.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
            self.listener, self._warned = listener, False
        except Exception as exc:  # noqa: BLE001 - without LISTEN the relay still polls
            if not self._warned:
                log.warning("relay: LISTEN unavailable (%s); polling every %.1fs", exc, self.poll_interval)
                self._warned = True

    def wait(self, stop: threading.Event, timeout: float) -> bool:
        """Whether a notification came within `timeout` seconds."""
        if self.listener is None:
            stop.wait(timeout)
            self._listen()  # PostgreSQL: try to get the push wake-up back
            return False
        try:
            return bool(list(self.listener.notifies(timeout=timeout, stop_after=1)))
        except Exception as exc:  # noqa: BLE001 - reconnect the listener on the next wait
            log.warning("relay: LISTEN connection lost (%s); polling", exc)
            self.close()
            return True  # claim now: what it would have said may have been lost

    def close(self) -> None:
        if self.listener is not None:
            with contextlib.suppress(Exception):  # it may already be broken
                self.listener.close()
            self.listener = None
