"""The pool's workaround for an upstream crash, and the upstream behaviour it relies on (pinned, so
an upgrade that fixes it fails here and the workaround can go)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from celery.concurrency import asynpool
from kombu.asynchronous import Hub

from common.bus.internals.celery import AsynPool


def test_upstream_a_dead_processs_untracked_sentinel_crashes_the_event_loop_registration() -> None:
    # what celery 5.7.0 + kombu 5.7.0 do with the None sentinel of a pool process that has exited
    hub = Hub()
    try:
        with pytest.raises(ValueError, match="file descriptor is None"):
            asynpool.iterate_file_descriptors_safely(  # type: ignore[attr-defined]
                [None], None, hub.add_reader, lambda *a: None
            )
    finally:
        hub.close()


def test_the_pool_skips_an_exited_process_and_tracks_a_live_one() -> None:
    added: list[Any] = []
    hub = SimpleNamespace(add_reader=lambda fd, *args: added.append(fd))
    pool = AsynPool.__new__(AsynPool)  # no processes: only the tracking method is exercised
    exited = SimpleNamespace(_sentinel_poll=None)
    live = SimpleNamespace(_sentinel_poll=7)

    pool._track_child_process(exited, hub)
    pool._track_child_process(live, hub)

    assert added == [7]
