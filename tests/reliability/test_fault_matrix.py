"""A small version of every fault of `make chaos` (tests/chaos), so the harness never rots: on
PostgreSQL in the reliability group, and the starred faults on SQLite in the sqlite group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.faults import FAULTS
from tests.chaos.harness import Fault, Matrix, in_suite_order, matrix
from tests.support.suite import backend

pytestmark = pytest.mark.slow
DATABASE = backend()
CHOSEN = in_suite_order(f for f in FAULTS if getattr(f, DATABASE))


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    with matrix(Path(tmp_path_factory.mktemp("matrix")), quick=True) as runner:
        yield runner


@pytest.mark.parametrize(
    "fault",
    [pytest.param(f, id=f.name) for f in CHOSEN],
)
def test_the_fault_loses_doubles_and_reorders_nothing(faults: Matrix, fault: Fault) -> None:
    result = faults.run(fault, DATABASE)
    assert result.events > 0
    assert result.report.clean(), f"{fault.name} on {DATABASE}:\n{result.report}"
