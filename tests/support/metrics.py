"""Reading a Prometheus text exposition in tests."""

from __future__ import annotations

import re

Sample = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(text: str) -> Sample:
    samples: Sample = {}
    for line in text.splitlines():
        match = re.match(r"^(suite_\w+)(?:\{(.*)\})? ([0-9.e+-]+)$", line)
        if match:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', match.group(2) or "")))
            samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def value(samples: Sample, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
