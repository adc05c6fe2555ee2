"""Fault injection for tests, loaded at interpreter start by a process whose PYTHONPATH begins with
this folder (`tests.support.processes.with_fault`). It connects to the bus's publication signals, so
the faults live here and not in production code. SUITE_FAULT names one:

- `dispatch-kill-before-publish`: the dispatcher dies by SIGKILL after the commit, before it
  publishes (a relay must publish the row all the same);
- `dispatch-slow`: the dispatcher publishes 2 s late (a process that exits meanwhile must publish
  first);
- `relay-kill-after-publish`: a relay dies by SIGKILL right after a batch is confirmed, before it is
  marked published.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from django.dispatch import Signal

from common.bus import signals


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_before_dispatch(sender: str, **_: Any) -> None:
    if sender == signals.DISPATCHER:
        _die()


def _slow_dispatch(sender: str, **_: Any) -> None:
    if sender == signals.DISPATCHER:
        threading.Event().wait(2)


def _kill_after_relay_confirm(sender: str, confirmed: int, **_: Any) -> None:
    if sender == signals.RELAY and confirmed:
        _die()


_FAULTS: dict[str, tuple[Signal, Callable[..., None]]] = {
    "dispatch-kill-before-publish": (signals.before_publish, _kill_before_dispatch),
    "dispatch-slow": (signals.before_publish, _slow_dispatch),
    "relay-kill-after-publish": (signals.after_confirm, _kill_after_relay_confirm),
}

_fault = os.environ.get("SUITE_FAULT", "")
if _fault:
    if _fault not in _FAULTS:
        raise SystemExit(f"SUITE_FAULT={_fault!r}: no such fault (known: {', '.join(_FAULTS)})")
    chosen, receiver = _FAULTS[_fault]
    chosen.connect(receiver, weak=False)
