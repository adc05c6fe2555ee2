from __future__ import annotations

from typing import Literal

from common.contracts.base import Contract, contract

Behaviour = Literal["ok", "fail-then-ok", "fail-until-fixed", "crash", "slow", "error"]


@contract("probe.poked", version=1, producer="test")
class Poked(Contract):
    key: str
    behaviour: Behaviour = "ok"
    target: str = "orders"  # the service that misbehaves; the others just apply the effect
    failures: int = 0
    seconds: float = 0
