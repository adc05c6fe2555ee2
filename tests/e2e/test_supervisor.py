"""`make run` survives the death of one of its processes: supervisord, configured from the Procfile
as `make run` configures it, restarts the process and says so; the others keep serving; and each
process's output reaches the terminal prefixed with its name."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.ops.supervisor import config, programs
from tests.support.checker import History, converge
from tests.support.load import journey
from tests.support.polling import wait_for
from tests.support.processes import BIN, ROOT, pool_processes
from tests.support.suite import CROWD_THROTTLES, Suite, running
from tests.support.supervised import SupervisedProcess


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    workdir = Path(tmp_path_factory.mktemp("supervised"))
    with running(workdir, settings=CROWD_THROTTLES, supervised=True) as suite:
        yield suite


def test_a_killed_process_is_restarted_and_said_so_while_the_others_serve(supervised: Suite) -> None:
    history = History()
    journey(supervised, history, 0)

    for name in ("orders-worker", "users-api"):
        # when one process dies without warning
        process = supervised.processes[name]
        assert isinstance(process, SupervisedProcess)
        before = process.pid
        children = pool_processes(before)  # gunicorn's worker, Celery's pool: orphaned, they exit
        process.kill(signal.SIGKILL)

        # then supervisord restarts it and its log says so
        wait_for(lambda p=process, b=before: p.replaced(b), timeout=60, what=f"{name} restarted")  # type: ignore[misc]
        wait_for(lambda c=children: all(map(gone, c)), timeout=60, what=f"the orphans of {name} to exit")  # type: ignore[misc]
        assert process.restarts() == 1
        assert f"exited: {name} (terminated by SIGKILL; not expected)" in process.supervisor.log()
        # and the other APIs kept serving meanwhile
        status, _ = supervised.call("GET", "notifications", "/healthz")
        assert status == 200
    for service in ("users", "orders"):
        supervised.wait_ready(service)

    # and the suite works end to end afterwards, nothing lost or doubled
    journey(supervised, history, 1)
    report = converge(supervised, history, timeout=120)
    assert report.clean(), str(report)


def gone(pid: int) -> bool:
    """Exited (a zombie waiting to be reaped counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_every_procfile_entry_is_supervised_and_prefixed(tmp_path: Path) -> None:
    # the configuration `make run` writes holds each Procfile entry, restarted, its output relayed
    text = config(tmp_path)
    for name in programs():
        assert f"[program:{name}]" in text
    assert text.count("autorestart = true") == len(programs())
    assert "-n users@%%h" in text  # supervisord's own %-expansion escaped: Celery sees %h

    # and run, a process's lines come out prefixed with its name
    entries = {"greeter": "sh -c 'echo hello from the greeter; sleep 30'"}
    (tmp_path / "s.conf").write_text(config(tmp_path, entries=entries))
    with subprocess.Popen(
        [str(BIN / "supervisord"), "-n", "-c", str(tmp_path / "s.conf")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as supervisord:
        assert supervisord.stdout is not None
        seen = []
        try:
            for line in supervisord.stdout:
                seen.append(line)
                if "hello from the greeter" in line:
                    break
        finally:
            supervisord.terminate()
            supervisord.wait(30)
    assert any(line.startswith("greeter") and "| hello from the greeter" in line for line in seen), seen
