"""The relay: takes committed outbox rows to RabbitMQ, in order, at least once. It also prunes the
service's outbox (and what its command adds: the inbox), being the service's one long-running
housekeeping process.

One batch = three steps, none holding a transaction open: claim pending rows in one statement
(`FOR UPDATE SKIP LOCKED` while choosing, then a lease in `claimed_until`, so several relays share the
work without taking the same row), publish them with pipelined confirms, mark the confirmed ones
published. A relay that dies mid-batch leaves its rows pending under a lease that runs out; they are
then published again and consumers drop the duplicates by event id.

Per-aggregate order: a batch leaves out an aggregate whose earlier pending row another relay holds,
so one aggregate's events always leave in creation order, whatever the number of relays.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple
from uuid import UUID

from django.db import DatabaseError, close_old_connections, connection

from common.bus import metrics, outbox, signals
from common.bus.amqp.confirms import BatchOutcome, BrokerUnavailable, ConfirmingPublisher, PublishRefused
from common.bus.amqp.wire import TaskMessage, task_message
from common.bus.models import OutboxMessage
from common.observability.context import in_flight

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


class Pending(NamedTuple):
    """What the relay reads of an outbox row: exactly what the message needs (no model instance)."""

    id: int
    event_id: str
    event_type: str
    aggregate_id: str
    correlation_id: str
    causation_id: str | None
    envelope: str


class Claimed(NamedTuple):
    rows: list[Pending]
    # the claim looked at a full batch of pending rows: more are waiting. A batch can be short
    # with a backlog (rows of aggregates whose earlier events are in flight wait their turn).
    backlog: bool


Status = OutboxMessage.Status
NOTIFY_CHANNEL = "bus_outbox"
LINGER_WORTH_ROWS = 4  # with the default 10 ms linger: commits arriving at 400/s or more


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
    # after a partial batch of several rows (commits are arriving faster than batches go out), wait
    # this long before claiming again, so the next batch is larger: fewer claims, marks and confirms
    # per event under load (see `worth_lingering`)
    linger: float = 0.0


def worth_lingering(claimed: int, *, lingered: bool, backlog: bool) -> bool:
    """Linger after a batch of several rows (commits arrive faster than batches go out), and keep
    lingering only while a linger gathers LINGER_WORTH_ROWS or more: at a moderate rate it would
    gather a row or two each time and hold every event back. A lone event never waits, and with a
    backlog there is no reason to."""
    if backlog:
        return False
    return claimed >= LINGER_WORTH_ROWS if lingered else claimed > 1


def relaxed_commits(sender: object, connection: Any, **kwargs: Any) -> None:
    """The relay's own writes (claims, marks, pruning) may be lost in a PostgreSQL crash: a lost mark
    means a republished event, which consumers drop. So they need not wait for the WAL flush."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")


class Relay:
    def __init__(self, config: RelayConfig, *, stop: threading.Event | None = None) -> None:
        self.config = config
        self.stop = stop or threading.Event()
        self.publisher = ConfirmingPublisher(
            config.amqp_url, confirm_timeout=config.confirm_timeout, name=f"{config.service}-relay"
        )
        self.owner = f"relay-{os.getpid()}-{uuid.uuid4().hex[:12]}"  # its leases' holder
        self.published_total = 0
        self.last_cycle = time.monotonic()
        self._outage_since: float | None = None
        self._backoff = 0.5
        self._single_rows_left = 0  # after a refused batch, go row by row to find the culprit
        self._flights: deque[tuple[list[Pending], list[str]]] = deque()  # sent, not yet settled
        self._recorder: Recorder | None = None
        self._claimer: ThreadPoolExecutor | None = None
        self._prefetched: Future[Claimed] | None = None
        self.backlog = False
        self._lingered = False  # the last pause was a linger
        self._last_prune = 0.0
        self._last_housekeeping = 0.0

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        waker = Waker(self.config.poll_interval)
        log.info(
            "relay %s started (batch %d, wake-up %s)",
            self.config.service,
            self.config.batch_size,
            "LISTEN/NOTIFY" if waker.listening else f"polling every {self.config.poll_interval}s",
        )
        self._start_pipeline()
        frozen = False
        try:
            while not self.stop.is_set():
                self._maybe_housekeep()  # also while the broker is away: it needs none
                try:
                    claimed = self.step()
                except BrokerUnavailable as exc:
                    self._outage(str(exc))
                    continue
                except DatabaseError as exc:
                    log.warning("relay: database error, retrying: %s", exc)
                    self._abandon_flights()
                    self._prefetched = None  # its rows' lease runs out
                    close_old_connections()
                    connection.close()
                    self._sleep(self._next_backoff())
                    continue
                self._maybe_prune()
                if not frozen:
                    frozen = _freeze_heap()
                self.last_cycle = time.monotonic()
                if not claimed and not self._flights and not self._single_rows_left:
                    try:
                        self.publisher.keepalive(reconnect=True)
                    except BrokerUnavailable as exc:
                        self._outage(str(exc))
                        continue
                    self._recovered()
                    waker.wait(self.stop)
                    self._lingered = False
                else:
                    self._linger_if_worth_it(claimed)
            self.drain_flights()
        finally:
            self._stop_pipeline()
            waker.close()
            self.publisher.close()
            connection.close()  # this thread's: the loop may run on a thread that outlives it
            log.info("relay %s stopped; published %d", self.config.service, self.published_total)

    def _linger_if_worth_it(self, claimed: int) -> None:
        self._lingered = bool(self.config.linger) and worth_lingering(
            claimed, lingered=self._lingered, backlog=self.backlog
        )
        if self._lingered:
            self._sleep(self.config.linger)

    def relay_once(self) -> int:
        """Publish one batch and settle it before returning (tests, `relay --once`); how many rows
        it took, 0 when nothing was pending."""
        claimed = self.step(depth=1)
        self.drain_flights()
        return claimed

    def drain(self) -> int:
        """Publish everything pending now, pipelined as in `run`; how many rows were published."""
        before = self.published_total
        self._start_pipeline()
        try:
            while self.step() or self._flights:
                pass
        finally:
            self._stop_pipeline()
        return self.published_total - before

    def step(self, depth: int = IN_FLIGHT) -> int:
        """Claim and send one batch, then settle the oldest batch in flight once `depth` are: while
        the broker confirms one batch, the next is read and sent. How many rows were claimed."""
        single = self._single_rows_left > 0
        if single:
            depth = 1  # isolating a refused row: nothing else in flight
            self._release_prefetched()
        claimed = (
            self._take_prefetched()
            if self._prefetched
            else self._claim(1 if single else self.config.batch_size)
        )
        rows, self.backlog = claimed
        if rows:
            self._single_rows_left = max(0, self._single_rows_left - 1)
            if self._claimer is not None and not single and claimed.backlog:
                # read the next batch on another connection while this one is sent and confirmed
                # (without a backlog there is nothing to read ahead)
                self._prefetched = self._claimer.submit(self._claim_on_own_connection, self.config.batch_size)
            signals.before_publish.send(signals.RELAY, count=len(rows))
            try:
                sent = self.publisher.send([self._message(row) for row in rows])
            except PublishRefused as exc:
                self._refused(rows, exc)
                return len(rows)
            except BrokerUnavailable:
                self._release(rows)
                self._abandon_flights()
                self._release_prefetched()
                raise
            self._flights.append((rows, sent))
        elif single:
            self._single_rows_left = 0
        if self._flights and (len(self._flights) >= depth or not rows):
            self._settle_oldest()
        return len(rows)

    def _claim_on_own_connection(self, limit: int) -> Claimed:
        try:
            return self._claim(limit)
        finally:
            close_old_connections()

    def _take_prefetched(self) -> Claimed:
        future, self._prefetched = self._prefetched, None
        assert future is not None
        return future.result()

    def _release_prefetched(self) -> None:
        if self._prefetched is not None:
            with contextlib.suppress(DatabaseError):
                self._release(self._take_prefetched().rows)

    def _start_pipeline(self) -> None:
        self._recorder = Recorder(self)
        self._claimer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-claimer")

    def _stop_pipeline(self) -> None:
        self._release_prefetched()
        if self._claimer is not None:
            self._claimer.submit(_close_connection).result()  # the claimer thread's own
            self._claimer.shutdown()
            self._claimer = None
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None

    def drain_flights(self) -> None:
        while self._flights:
            self._settle_oldest()

    def _settle_oldest(self) -> None:
        rows, sent = self._flights.popleft()
        try:
            outcome = self.publisher.wait(sent)
        except PublishRefused as exc:
            self._refused(rows, exc)
            return
        except BrokerUnavailable:
            self._release(rows)
            self._abandon_flights()
            raise
        signals.after_confirm.send(signals.RELAY, confirmed=len(outcome.confirmed))
        if self._recorder is not None:
            self._recorder.put(rows, outcome)
        else:
            self._record(rows, outcome)
        self._recovered()
        if outcome.nacked:
            self._sleep(self._next_backoff())

    def _refused(self, rows: list[Pending], exc: Exception) -> None:
        """The broker closed the channel over something sent: nothing in flight is confirmed. A
        row sent alone with nothing else in flight is the culprit: it fails, with the reason (the
        refusal of a row sent alone arrives while its confirm is awaited, not while it is sent)."""
        in_flight = self._abandon_flights()
        if len(rows) == 1 and not in_flight:
            outbox.fail([rows[0].id], f"refused by the broker: {exc}", owner=self.owner)
            return
        self._release(rows)
        log.warning("relay: broker refused a batch (%s); retrying row by row", exc)
        self._single_rows_left = len(rows) + in_flight

    def _abandon_flights(self) -> int:
        """Release the rows of every batch in flight (their confirms will not come): back in line."""
        count = 0
        while self._flights:
            rows, _ = self._flights.popleft()
            count += len(rows)
            with contextlib.suppress(DatabaseError):  # if the database is away, the lease runs out
                self._release(rows)
        return count

    # --- database -------------------------------------------------------------------------------
    def _claim(self, limit: int) -> Claimed:
        """Claim up to `limit` pending rows, oldest first, in one statement (no transaction is held
        while publishing): other relays skip them until the lease runs out.

        An aggregate whose first pending row is not among ours is left alone, whoever holds that
        row: one aggregate's events leave in creation order, however many relays run.
        """
        skip_locked = (
            "FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
        )
        claim = CLAIM.format(
            table=OutboxMessage._meta.db_table,
            skip_locked=skip_locked,
            now=outbox.db_now(connection),
            until=outbox.db_later(connection, self.config.lease.total_seconds()),
        )
        with connection.cursor() as cursor:
            cursor.execute(claim, {"limit": limit, "owner": self.owner})
            fetched = cursor.fetchall()
        rows = [
            Pending(
                id,
                _text(event),
                kind,
                aggregate,
                _text(correlation),
                _text(cause) if cause else None,
                envelope,
            )
            for id, event, kind, aggregate, correlation, cause, envelope, _ in fetched
        ]
        backlog = bool(fetched) and fetched[0][7] >= limit
        return Claimed(sorted(rows, key=lambda row: row.id), backlog)

    def _release(self, rows: list[Pending]) -> None:
        outbox.release([row.id for row in rows], owner=self.owner)

    def _message(self, row: Pending) -> TaskMessage:
        return task_message(
            event_id=row.event_id,
            event_type=row.event_type,
            aggregate_id=row.aggregate_id,
            correlation_id=row.correlation_id,
            causation_id=row.causation_id,
            envelope_json=row.envelope,
            origin=self.config.service,
        )

    def _record(self, rows: list[Pending], outcome: BatchOutcome) -> None:
        rows_by_event = {row.event_id: row for row in rows}
        outbox.settle(outcome, {e: row.id for e, row in rows_by_event.items()}, owner=self.owner)
        confirmed = outcome.confirmed
        self.published_total += len(confirmed)
        metrics.count_published(self.config.service, (rows_by_event[e].event_type for e in confirmed))
        if log.isEnabledFor(logging.DEBUG):
            for event_id in confirmed:
                row = rows_by_event[event_id]
                with in_flight(
                    correlation=UUID(row.correlation_id),
                    causation=UUID(row.causation_id) if row.causation_id else None,
                    event=UUID(row.event_id),
                    kind=row.event_type,
                ):
                    log.debug("published %s %s", row.event_type, row.event_id)

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < self.config.prune_every:
            return
        self._last_prune = now
        pruned = outbox.prune(older_than=self.config.retention)
        others = sum(prune() for prune in self.config.pruning)
        if pruned or others:
            log.info("relay: pruned %d published outbox row(s) and %d other row(s)", pruned, others)

    def _maybe_housekeep(self) -> None:
        now = time.monotonic()
        if not self.config.housekeeping or now - self._last_housekeeping < self.config.housekeeping_every:
            return
        self._last_housekeeping = now
        for task in self.config.housekeeping:
            try:
                done = task()
            except Exception:  # one task's failure must not stop the relay or the other tasks
                log.exception("relay: housekeeping %s failed", getattr(task, "__qualname__", task))
                close_old_connections()
                continue
            if done:
                log.debug("relay: housekeeping %s did %d", getattr(task, "__qualname__", task), done)

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


def _text(value: str) -> str:
    """A UUID column cast to text, in its canonical form: PostgreSQL's already is (no UUID object
    is made per column: a 1,000-row claim made 3,000); SQLite stores hex digits (Django's way)."""
    return value if len(value) == 36 else str(UUID(value))


def _freeze_heap() -> bool:
    """After the first cycle (everything imported, connections open), move what exists to the
    collector's permanent generation: a full collection of Django's heap paused the relay for
    50 ms, every few seconds at 200 events/s, and every event waiting behind it showed it."""
    gc.collect()
    gc.freeze()
    return True


def _close_connection() -> None:
    connection.close()


class Recorder:
    """Marks confirmed batches in the database on its own thread and connection, while the relay
    reads and sends the next: marking is off the path from commit to broker. A batch not yet marked
    stays claimed (its lease), so no other batch takes its rows or jumps its aggregates."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.queue: queue.Queue[tuple[list[Pending], BatchOutcome] | None] = queue.Queue(maxsize=IN_FLIGHT)
        self.thread = threading.Thread(target=self._loop, name="relay-recorder", daemon=True)
        self.thread.start()

    def put(self, rows: list[Pending], outcome: BatchOutcome) -> None:
        self.queue.put((rows, outcome))

    def close(self) -> None:
        """Mark what is queued, then stop."""
        self.queue.put(None)
        self.thread.join()

    def _loop(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                rows, outcome = item
                try:
                    self.relay._record(rows, outcome)
                except DatabaseError as exc:  # the lease runs out: published again, deduplicated
                    log.warning("relay: could not mark %d published row(s): %s", len(rows), exc)
                    close_old_connections()
        finally:
            connection.close()


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
