"""A RabbitMQ node of the test's own, beside the machine's: its own name, port and directories, so a
test can stop, kill, cold-start, alarm or reconfigure it without touching anyone else's broker.
Nodes can be joined into a cluster (`join`). See ../shared/notes/faults-and-clusters.md."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.support.broker import Broker
from tests.support.polling import wait_for
from tests.support.processes import free_port

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


@dataclass
class RabbitNode:
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}@localhost")
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)  # Erlang distribution (clustering, rabbitmqctl)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="suite-rabbit-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def broker(self) -> Broker:
        return Broker(root=f"amqp://guest:guest@127.0.0.1:{self.port}/", node=self.name)

    def _env(self) -> dict[str, str]:
        d = self.directory
        return dict(
            os.environ,
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_PID_FILE=str(d / "pid"),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
        )

    def start(self, timeout: float = 120.0) -> RabbitNode:
        """Start the node (again, after `kill`: a cold start on the same data) and wait until it
        serves."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "enabled_plugins").write_text("[].\n")
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        log = (self.directory / "server.out").open("ab")
        self.process = subprocess.Popen(
            [str(SERVER)], env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for(self._serving, timeout=timeout, interval=1.0, what=f"RabbitMQ node {self.name} to start")
        return self

    def _serving(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited:\n{self.log()[-3000:]}")
        return self.ctl_ok("await_startup", "--timeout", "5")

    def log(self) -> str:
        out = self.directory / "server.out"
        return out.read_text(errors="replace") if out.exists() else ""

    def ctl(self, *args: str, timeout: float = 120.0) -> str:
        return self.broker.ctl(*args, timeout=timeout)

    def ctl_ok(self, *args: str) -> bool:
        try:
            self.ctl(*args, timeout=30)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return False
        return True

    def pid(self) -> int:
        return int(self.ctl("eval", "list_to_integer(os:getpid()).").strip())

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup")

    def kill(self) -> None:
        """SIGKILL the Erlang VM: nothing is flushed, nothing is said goodbye to."""
        os.kill(self.pid(), signal.SIGKILL)
        if self.process is not None:
            self.process.wait(30)

    def join(self, first: RabbitNode) -> None:
        """Make this node a member of `first`'s cluster."""
        self.ctl("stop_app")
        self.ctl("join_cluster", first.name)
        self.ctl("start_app")
        self.ctl("await_startup")

    def stop(self) -> None:
        """Stop the node and remove its data."""
        try:
            if self.process is not None and self.process.poll() is None:
                if not self.ctl_ok("stop"):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(60)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


class RabbitCluster:
    """Three nodes of the test's own in one cluster; quorum queues declared once all three run get
    a replica on each."""

    def __init__(self, size: int = 3) -> None:
        self.nodes = [RabbitNode() for _ in range(size)]

    def start(self) -> RabbitCluster:
        first, *others = self.nodes
        first.start()
        for node in others:
            node.start()
            node.join(first)
        return self

    @property
    def broker(self) -> Broker:
        """Administered through the first node; a suite's proxies reach whichever node answers."""
        return replace(self.nodes[0].broker, members=tuple(n.port for n in self.nodes))

    def live(self) -> RabbitNode:
        return next(n for n in self.nodes if n.process is not None and n.process.poll() is None)

    def leader(self, vhost: str, queue: str) -> RabbitNode:
        """The node leading a quorum queue's replicas right now."""
        listed = json.loads(
            self.live().ctl("list_queues", "-p", vhost, "name", "leader", "--formatter", "json")
        )
        name = next(q["leader"] for q in listed if q["name"] == queue)
        return next(n for n in self.nodes if n.name == name)

    def online(self, vhost: str, queue: str) -> int:
        """How many of the queue's replicas are online."""
        listed = json.loads(
            self.live().ctl("list_queues", "-p", vhost, "name", "online", "--formatter", "json")
        )
        return len(next(q["online"] for q in listed if q["name"] == queue))

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
