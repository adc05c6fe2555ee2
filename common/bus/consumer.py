"""From a received task message to a handler call: validate, then run once, in one transaction.

Validation happens before any write, so a message that cannot be understood changes nothing and goes
straight to the dead-letter queue; it is never retried, since it would fail the same way every time.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction
from pydantic import ValidationError

from common.bus import inbox
from common.bus.handlers import HandlerRegistry, Subscription
from common.contracts.base import Contract, UnknownEventType, UnknownEventVersion, upcast
from common.contracts.envelope import Envelope
from common.observability import metrics
from common.observability.context import in_flight

log = logging.getLogger(__name__)


class InvalidMessage(ValueError):
    """The message can never be handled as it is: bad envelope, contract, type or version."""


def parse(
    registry: HandlerRegistry, args: tuple[Any, ...], kwargs: dict[str, Any], *, task_name: str
) -> tuple[Envelope, Subscription, Contract]:
    if len(args) != 1 or kwargs:
        raise InvalidMessage("the message body must carry exactly one envelope argument")
    try:
        envelope = Envelope.model_validate(args[0])
    except ValidationError as exc:
        raise InvalidMessage(f"invalid envelope: {_summary(exc)}") from None
    if envelope.type != task_name:
        raise InvalidMessage(f"envelope type {envelope.type!r} does not match task {task_name!r}")
    try:
        subscription = registry.subscription(envelope.type)
        data = upcast(
            envelope.type,
            envelope.data,
            from_version=envelope.version,
            to_version=subscription.contract.version,
        )
    except (UnknownEventType, UnknownEventVersion) as exc:
        raise InvalidMessage(
            f"{registry.service} cannot handle {envelope.type} v{envelope.version}: {exc}"
        ) from None
    try:
        event = subscription.contract.model_validate(data)
    except ValidationError as exc:
        raise InvalidMessage(
            f"{envelope.type} v{envelope.version} data does not match its contract: {_summary(exc)}"
        ) from None
    return envelope, subscription, event


def dispatch(envelope: Envelope, subscription: Subscription, event: Contract, *, service: str) -> bool:
    """Run the handler once per event id, in one transaction with its inbox row and whatever it
    writes or publishes. False when the event had been handled already (a duplicate)."""
    labels = {"service": service, "type": envelope.type}
    context = in_flight(
        correlation=envelope.correlation_id,
        causation=envelope.causation_id,
        event=envelope.id,
        kind=envelope.type,
    )
    with context:
        started = time.perf_counter()
        with transaction.atomic():
            if not inbox.first_delivery(envelope):
                log.info("duplicate %s %s skipped", envelope.type, envelope.id)
                metrics.DUPLICATES.labels(**labels).inc()
                return False
            subscription.handler(event, envelope)
        elapsed = time.perf_counter() - started
        metrics.HANDLER_DURATION.labels(**labels).observe(elapsed)
        metrics.CONSUMED.labels(**labels).inc()
        log.info("handled %s %s in %.1f ms", envelope.type, envelope.id, elapsed * 1000)
    return True


def _summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
