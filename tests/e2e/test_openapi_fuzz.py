"""Schemathesis against each running service's own OpenAPI schema: no 5xx, every response as the
schema documents it (status, content type, body), bad input refused, auth not ignored."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.processes import BIN
from tests.support.suite import Suite

# Rules beyond what a schema can say (an order total above the maximum, an email already taken)
# rightly refuse schema-valid input, so "schema-valid request rejected" is not checked.
EXCLUDED = "positive_data_acceptance"


@pytest.mark.parametrize("service", ["users", "orders", "notifications"])
def test_the_api_keeps_its_documented_promises(suite: Suite, service: str, tmp_path: Path) -> None:
    _, _, token = suite.sign_up(f"fuzz-{service}")
    result = subprocess.run(
        [
            str(BIN / "st"),
            "run",
            suite.url(service, "/api/schema/"),
            "--url",
            suite.url(service, ""),
            "--checks",
            "all",
            "--exclude-checks",
            EXCLUDED,
            "--max-examples",
            "40",
            "--seed",
            "20261129",
            "--header",
            f"Authorization: Bearer {token}",
            "--output-truncate",
            "false",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
