"""`make run` starts with this check: an unreachable broker is one clear line and a failure."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.processes import free_port


def test_unreachable_broker_is_one_line_naming_the_fix() -> None:
    env = dict(os.environ, AMQP_URL=f"amqp://guest:secret@127.0.0.1:{free_port()}//")
    result = subprocess.run(
        [sys.executable, "-m", "common.bus.amqp.connection"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "RabbitMQ is not reachable" in lines[0] and "rabbitmq-server -detached" in lines[0]
    assert "secret" not in lines[0]  # the password is never printed


def test_reachable_broker_passes_silently() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "common.bus.amqp.connection"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stderr == ""
