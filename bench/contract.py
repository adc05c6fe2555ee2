"""The benchmark's event: small, like a real one (about 300 bytes on the wire with its envelope)."""

from __future__ import annotations

from common.contracts.base import Contract, contract


@contract("bench.pinged", version=1, producer="orders")
class Pinged(Contract):
    n: int
    scheduled_at: float  # when the producer was due to commit it (epoch seconds)
