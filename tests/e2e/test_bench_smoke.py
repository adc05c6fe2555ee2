"""The benchmark at tiny sizes, so it never rots: it runs end to end and reports every key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.processes import ROOT

KEYS = {
    "raw_amqp": ("publish_confirmed_per_s", "publish_unconfirmed_per_s", "consume_per_s"),
    "plain_celery": ("throughput_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms"),
    "pipeline": ("throughput_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms"),
    "pipeline_relay": ("throughput_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms"),
    "relay": ("publish_per_s",),
    "consumer": ("handled_per_s",),
    "pipeline_1m": ("throughput_per_s",),
    "ratios": (
        "pipeline_vs_plain_celery",
        "p99_pipeline_vs_plain_celery",
        "relay_vs_raw_unconfirmed",
        "pipeline_1m_vs_pipeline",
    ),
}


def test_the_benchmark_runs_and_reports_every_number(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(output.read_text())
    for section, keys in KEYS.items():
        for key in keys:
            assert report[section][key] > 0, f"{section}.{key}"
    assert report["versions"]["celery"] and report["versions"]["rabbitmq"]
    assert "pipeline vs plain celery" in result.stdout.replace("_", " ")
