"""The fault matrix: the suite's real processes in the shipped configuration, under supervisord as
`make run` runs them (a process that dies is restarted), driven by customers over HTTP while one
fault at a time is injected; then the history checker reads every service's state and the mail.

Suites are shared by the faults that need the same things (the machine's broker behind per-kind
proxies, or a RabbitMQ node of the harness's own for broker faults), one per database; each fault
has a history of its own, and the checker looks at that history's customers only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos import diagnosis
from tests.chaos.clients import Load
from tests.support.checker import History, Report, converge
from tests.support.polling import wait_for
from tests.support.rabbit_node import RabbitCluster, RabbitNode
from tests.support.suite import CROWD_THROTTLES, SERVICES, Suite, running

Progress = Callable[[str], None]


def hold(seconds: float) -> None:
    """A fault's duration (the broker stays down this long): not a wait for an effect."""
    threading.Event().wait(seconds)


@dataclass
class Run:
    """What a fault acts on while customers keep coming."""

    suite: Suite
    load: Load
    history: History
    quick: bool
    node: RabbitNode | None = None
    cluster: RabbitCluster | None = None
    notes: list[str] = field(default_factory=list)

    def rounds(self, full: int, quick: int = 1) -> int:
        return quick if self.quick else full

    def progressed(self, operations: int, what: str = "customers to get going") -> None:
        """Wait until customers have had `operations` more acknowledged operations."""
        target = self.history.operations + operations
        wait_for(lambda: self.history.operations >= target, timeout=180, what=what)


@dataclass(frozen=True)
class Fault:
    name: str
    promise: str  # what a clean row proves
    inject: Callable[[Run], None]
    sqlite: bool = False  # runs on SQLite too
    # "system": the machine's broker behind proxies; "node": a node of our own; "cluster": three
    broker: str = "system"
    postgresql: bool = True


@dataclass(frozen=True)
class Result:
    fault: str
    database: str
    events: int
    report: Report
    notes: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        return self.report.counts()

    def line(self) -> str:
        c = self.counts
        return (
            f"| {self.fault} | {self.database} | {self.events} | {self.report.applied} | {c['lost']} "
            f"| {c['duplicated']} | {c['unexpected']} | {c['out of order']} "
            f"| {self.report.seconds_to_converge:.1f} |"
        )


TABLE_HEAD = (
    "| fault | database | events | effects | lost | duplicated | unexpected | out of order "
    "| converged (s) |\n|---|---|---|---|---|---|---|---|---|"
)


def events_committed(suite: Suite) -> int:
    return sum(int(suite.sql(s, "SELECT count(*) FROM bus_outboxmessage")[0][0]) for s in SERVICES)


BROKER_KINDS = ("system", "node", "cluster")


def in_suite_order(faults: Iterable[Fault]) -> list[Fault]:
    """The faults grouped by the suite they need (in their own order within a group): one suite
    runs at a time, so each is started once."""
    return sorted(faults, key=lambda f: BROKER_KINDS.index(f.broker))


class Matrix:
    """Runs faults on shared suites, one suite at a time (three at once exhaust PostgreSQL's
    connections: every process keeps its own); `close()` tears the last one down."""

    def __init__(
        self, workdir: Path, *, quick: bool, progress: Progress = print, clients: int = 6, min_events: int = 0
    ) -> None:
        self.workdir, self.quick, self.progress, self.clients = workdir, quick, progress, clients
        # customers carry on after the fault until the row has committed this many events: a full
        # run's size does not depend on the machine's speed of the day
        self.min_events = min_events
        self._stack = ExitStack()
        self._key: tuple[str, str] | None = None
        self._suite_of_key: tuple[Suite, RabbitNode | RabbitCluster | None] | None = None

    def _suite(self, database: str, broker: str) -> tuple[Suite, RabbitNode | RabbitCluster | None]:
        key = (database, broker)
        if key != self._key or self._suite_of_key is None:
            self.close()
            self._stack = ExitStack()
            where = {
                "node": "a broker node of its own",
                "cluster": "a three-node cluster of its own",
            }.get(broker, "the machine's broker")
            self.progress(f"starting a suite on {database} ({where})")
            own: RabbitNode | RabbitCluster | None = None
            options: dict[str, object] = {}
            if broker in ("node", "cluster"):
                own = RabbitNode().start() if broker == "node" else RabbitCluster().start()
                self._stack.callback(own.stop)
                options["broker"] = own.broker
            workdir = self.workdir / f"{database}-{broker}"
            workdir.mkdir(parents=True, exist_ok=True)
            suite = self._stack.enter_context(
                running(
                    workdir,
                    settings=dict(CROWD_THROTTLES),
                    proxied=True,
                    supervised=True,
                    database=database,
                    **options,  # type: ignore[arg-type]
                )
            )
            self._key, self._suite_of_key = key, (suite, own)
        return self._suite_of_key

    def run(self, fault: Fault, database: str) -> Result:
        suite, own = self._suite(database, fault.broker)
        history = History()
        before = events_committed(suite)
        load = Load(suite, history, clients=self.clients, seed=hash((fault.name, database)) % 1000).start()
        node = own if isinstance(own, RabbitNode) else None
        cluster = own if isinstance(own, RabbitCluster) else None
        run = Run(suite, load, history, self.quick, node, cluster)
        stop_progress = threading.Event()
        threading.Thread(
            target=self._report_progress, args=(fault, database, run, stop_progress), daemon=True
        ).start()
        diagnosed = False
        try:
            run.progressed(4)
            fault.inject(run)
            run.progressed(
                self.clients * (2 if self.quick else 30), what="customers to carry on after the fault"
            )
            wait_for(
                lambda: events_committed(suite) - before >= self.min_events,
                timeout=600,
                what=f"{self.min_events} events committed under this fault",
            )
        except Exception:
            self.progress(diagnosis.snapshot(suite, own))  # before the customers are waited for
            diagnosed = True
            raise
        finally:
            stop_progress.set()
            try:
                load.stop()
            except Exception:
                if not diagnosed:  # a customer gave up, though the fault went through
                    self.progress(diagnosis.snapshot(suite, own))
                raise
        healed = time.monotonic()
        report = converge(suite, history, timeout=300, since=healed)
        result = Result(fault.name, database, events_committed(suite) - before, report, tuple(run.notes))
        self.progress(f"  {result.line()}")
        if not report.clean():
            self.progress(f"{report}\n{diagnosis.snapshot(suite, own)}")
        return result

    def _report_progress(self, fault: Fault, database: str, run: Run, stop: threading.Event) -> None:
        while not stop.wait(10):
            self.progress(
                f"  … {fault.name} on {database}: {run.history.operations} operations acknowledged so far"
            )

    def close(self) -> None:
        self._key, self._suite_of_key = None, None
        self._stack.close()


@contextmanager
def matrix(
    workdir: Path, *, quick: bool, progress: Progress = print, min_events: int = 0
) -> Iterator[Matrix]:
    runner = Matrix(workdir, quick=quick, progress=progress, min_events=min_events)
    try:
        yield runner
    finally:
        runner.close()
