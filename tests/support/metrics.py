"""Reading a Prometheus text exposition in tests."""

from __future__ import annotations

import re

Sample = dict[tuple[str, tuple[tuple[str, str], ...]], float]
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


def scrape(text: str) -> Sample:
    samples: Sample = {}
    for line in text.splitlines():
        match = re.match(r"^(suite_\w+)(?:\{(.*)\})? ([0-9.e+-]+)$", line)
        if match:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', match.group(2) or "")))
            samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def value(samples: Sample, name: str, **labels: str) -> float:
    """The series' value. A series that is not there fails: a gauge that was not exported is not 0."""
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        present = sorted({f"{n}{dict(lb)}" for n, lb in samples if n == name}) or "none"
        raise AssertionError(f"no series {name}{labels} in the scrape; series of {name}: {present}")
    return samples[key]


def counter(samples: Sample, name: str, **labels: str) -> float:
    """A counter's (or histogram series') value: 0 when never incremented, since prometheus-client
    exports a labelled counter only from its first increment. Assert on how much it moved."""
    assert name.endswith(COUNTER_SUFFIXES), f"{name} is not a counter: read it with value()"
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
