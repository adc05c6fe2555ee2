"""Real service processes for end-to-end and fault tests: start, wait until ready, kill by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from common.ops.supervisor import programs
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FAULTS = Path(__file__).resolve().parent / "faults"


def with_fault(fault: str) -> dict[str, str]:
    """The environment of a process that injects `fault` (see tests/support/faults/sitecustomize.py)."""
    path = os.pathsep.join(p for p in (str(FAULTS), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"SUITE_FAULT": fault, "PYTHONPATH": path}


@cache
def procfile() -> dict[str, str]:
    """The Procfile's entries (name → command), read as `make run` reads them."""
    return programs()


def pool_processes(pid: int) -> list[int]:
    """The children of a process: a Celery worker's pool processes."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    name: str
    argv: list[str]
    env: Mapping[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=dict(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (graceful), then SIGKILL the whole process group if it lingers."""
        if self.popen is None:
            return
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # children (pool processes) of our own group
        except ProcessLookupError:
            pass
        self.popen.wait(5)


def http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


def wait_http(process: Process, url: str, timeout: float = 30.0) -> None:
    def probe() -> bool:
        if not process.alive():
            raise AssertionError(f"{process.name} exited early:\n{process.log()[-3000:]}")
        return http_ready(url)

    wait_for(probe, timeout=timeout, what=f"{process.name} at {url}")


def wait_log(process: Process, text: str, timeout: float = 30.0) -> None:
    def probe() -> bool:
        if not process.alive():
            raise AssertionError(f"{process.name} exited early:\n{process.log()[-3000:]}")
        return text in process.log()

    wait_for(probe, timeout=timeout, what=f"{text!r} in the log of {process.name}")


def manage(service: str, *args: str, env: Mapping[str, str]) -> str:
    result = subprocess.run(
        [str(BIN / "python"), "manage.py", service, *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        raise AssertionError(f"manage.py {service} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout
