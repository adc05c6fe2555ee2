"""Consumer contract tests: examples built from each contract version (by polyfactory, within the
contract's own constraints), as its producer would publish them, fed to every handler that consumes
the type.

A producer change a consumer cannot read (a new version it was not written for, a field it cannot
parse) fails here, in the build, instead of in a dead-letter queue in production.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from polyfactory.factories.pydantic_factory import ModelFactory
from pydantic import ValidationError

from common.bus.consume.failures import Park, RetryLater
from common.bus.consume.handlers import HandlerRegistry
from common.bus.consume.handling import Delivery, outcomes
from common.contracts import Envelope, OrderLine, contract_for, registered, versions_of

Data = dict[str, Any]
EXAMPLES = 25


def _coherent_order(data: Data) -> Data:
    """A total that is the sum of its lines, as the orders service computes it."""
    lines = [
        OrderLine(
            sku=line.sku, quantity=min(line.quantity, 100), unit_price=min(line.unit_price, Decimal(1000))
        )
        for line in data["lines"][:5]
    ]
    return {
        **data,
        "lines": tuple(lines),
        "total": sum((x.unit_price * x.quantity for x in lines), Decimal(0)),
    }


# Invariants across fields that a field-by-field generator cannot know; the producer's code keeps them.
COHERENT: dict[str, Callable[[Data], Data]] = {"order.placed": _coherent_order}


def _as_is(data: Data) -> Data:
    return data


def published_examples(event_type: str, version: int, count: int = EXAMPLES) -> list[Data]:
    """Data as the producer of `event_type` v`version` publishes it (valid for its own contract)."""
    contract = contract_for(event_type, version)
    factory = ModelFactory.create_factory(contract)
    factory.seed_random(version * 1000 + len(event_type))
    fix: Callable[[Data], Data] = COHERENT.get(event_type, _as_is)
    examples = []
    for _ in range(count * 4):
        try:
            examples.append(contract.model_validate(fix(factory.process_kwargs())).model_dump(mode="json"))
        except ValidationError:
            continue
        if len(examples) == count:
            return examples
    raise AssertionError(f"could only build {len(examples)} valid {event_type} v{version} examples")


def check_consumer(
    registry: HandlerRegistry,
    event_type: str,
    version: int,
    *,
    given: Callable[[Data], None] | None = None,
) -> list[Envelope]:
    """Every example of `event_type` v`version` goes through the consumer's real parser and handler
    and is handled: a parse failure, and a retry too, fail the test. `given(data)` first sets up
    what the consumer would know when the event arrives (say the contact an order is for), so the
    handler's body runs rather than stopping at a missing precondition. Returns the envelopes."""
    cls = contract_for(event_type, version)
    handled = []
    for data in published_examples(event_type, version):
        envelope = Envelope.wrap(
            cls.model_validate(data), producer=cls.producer, aggregate_id="a", aggregate_version=1
        )
        if given is not None:
            given(data)
        outcome = outcomes(registry, [Delivery(event_type, (envelope.to_json_dict(),), {})])[0]
        if isinstance(outcome, RetryLater):
            raise AssertionError(
                f"{registry.service} retried {event_type} v{version} ({outcome.cause}): set up what it "
                f"needs with given=\nexample: {data}"
            )
        if isinstance(outcome, Park):
            raise AssertionError(
                f"{registry.service} cannot read {event_type} v{version}: {outcome}\nexample: {data}"
            )
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome == "handled", (outcome, data)
        handled.append(envelope)
    return handled


def published_versions() -> list[tuple[str, int]]:
    """Every (type, version) a producer may have in flight: all registered versions."""
    return [(t, v) for (t, v), cls in registered().items() if cls.producer != "test" and v in versions_of(t)]
