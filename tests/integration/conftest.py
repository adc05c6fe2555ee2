from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.tap import EventTap


@pytest.fixture
def tap() -> Iterator[EventTap]:
    """Every event published to the run's vhost from now on."""
    event_tap = EventTap()
    try:
        yield event_tap
    finally:
        event_tap.close()
