"""The suite's processes under supervisord, configured by `common.ops.supervisor` as `make run`
configures it (each with a test suite's environment): a process that dies is restarted, and the
test finds each one's current pid through supervisord's XML-RPC interface."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import xmlrpc.client
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xmlrpc.client import ServerProxy

from supervisor.xmlrpc import SupervisorTransport

from common.ops.supervisor import config
from tests.support.polling import wait_for
from tests.support.processes import BIN, ROOT, Process, procfile


class Supervisor:
    def __init__(self, directory: Path, environment: Mapping[str, Mapping[str, str]]) -> None:
        self.directory = directory
        self.environment = environment
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def rpc(self) -> Any:
        socket = f"unix://{self.directory / 'supervisor.sock'}"
        return ServerProxy("http://127.0.0.1", transport=SupervisorTransport(None, None, socket)).supervisor

    def start(self) -> dict[str, SupervisedProcess]:
        self.directory.mkdir(parents=True, exist_ok=True)
        entries = {name: procfile()[name] for name in self.environment}
        conf = self.directory / "supervisord.conf"
        conf.write_text(config(self.directory, entries=entries, environment=self.environment, log_files=True))
        log = (self.directory / "supervisord.log").open("ab")
        # supervisord's own environment reaches every program beneath what the configuration
        # sets, and nothing there can remove a variable (a database URL on a SQLite suite, say):
        # each program's whole environment is in the configuration, so supervisord gets only PATH
        self.popen = subprocess.Popen(
            [str(BIN / "supervisord"), "-n", "-c", str(conf)],
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._up, timeout=30, what="supervisord to answer")
        return {name: SupervisedProcess(name, self) for name in entries}

    def _up(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            raise AssertionError(f"supervisord exited:\n{self.log()[-3000:]}")
        try:
            return bool(self.rpc.getState()["statename"] == "RUNNING")
        except OSError:
            return False

    def log(self) -> str:
        path = self.directory / "supervisord.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def info(self, name: str) -> dict[str, Any]:
        return dict(self.rpc.getProcessInfo(name))

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        # every program asked to stop at once (supervisord alone stops them one after another),
        # then supervisord waits for their warm shutdowns and exits
        with contextlib.suppress(OSError, xmlrpc.client.Fault):
            for name in self.environment:
                self.rpc.stopProcess(name, False)
        self.popen.terminate()
        try:
            self.popen.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


class SupervisedProcess(Process):
    """A program of supervisord, seen as tests see a `Process`: its pid is whichever instance runs."""

    def __init__(self, name: str, supervisor: Supervisor) -> None:
        super().__init__(name, [], {}, supervisor.directory / f"{name}.log")
        self.supervisor = supervisor

    def start(self) -> Process:
        raise AssertionError(f"supervisord starts {self.name}")

    @property
    def pid(self) -> int:
        pid = int(self.supervisor.info(self.name)["pid"])
        assert pid, f"{self.name} is not running"
        return pid

    def alive(self) -> bool:
        try:
            return self.supervisor.info(self.name)["statename"] in ("RUNNING", "STARTING")
        except OSError:
            return False

    def replaced(self, before: int) -> bool:
        """Whether another instance than pid `before` runs now (one look at supervisord's state:
        between two, the program may have died again)."""
        try:
            info = self.supervisor.info(self.name)
        except OSError:
            return False
        return info["statename"] in ("RUNNING", "STARTING") and int(info["pid"]) not in (0, before)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        os.kill(self.pid, sig)

    def restarts(self) -> int:
        """How often supervisord has seen it die unexpectedly (and restarted it)."""
        return self.supervisor.log().count(f"exited: {self.name} (")

    def stop(self, timeout: float = 15.0) -> None:
        return  # supervisord stops its programs
